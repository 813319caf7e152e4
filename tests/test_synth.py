"""The synthetic world: deterministic, hard negatives present, mouths in sync with their own voice, detectable."""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
from conftest import TINY

from asd_se.core.media import decode
from asd_se.faces.detect import FaceDetector
from data_prep.synth.dataset import SynthConfig, make_dataset, video_specs
from data_prep.synth.plan import NOT_SPEAKING, OFF_SCREEN, annotation_rows, mouth_openings, plan_scene
from data_prep.synth.render import render_audio

SPECS = [spec for spec, _ in video_specs(SynthConfig(videos=12, minutes=0.5, seed=7))]


def test_same_seed_same_dataset(synth_root, tmp_path):
    make_dataset(tmp_path, TINY, workers=1)
    for name in ("annotations/train.csv", "annotations/val.csv", "mouth_boxes/val.csv"):
        assert (tmp_path / name).read_bytes() == (synth_root / name).read_bytes()
    first = sorted((synth_root / "videos").glob("*.mp4"))[0]
    again = [img for _, (img,) in decode(tmp_path / "videos" / first.name, ("gray",))]
    original = [img for _, (img,) in decode(first, ("gray",))]
    assert len(again) == len(original) and all(np.array_equal(a, b) for a, b in zip(again, original))


def test_videos_vary_in_rate_size_and_faces():
    assert {float(s.fps) for s in SPECS} >= {10.0, 15.0, 24.0, 25.0, 30.0, 30000 / 1001}
    assert any(s.width % 2 or s.height % 2 for s in SPECS)
    assert {len(plan_scene(s).faces) for s in SPECS} == {1, 2, 3}


def test_hard_negatives_and_silent_speech_are_present():
    mouthing = off_screen_with_still_faces = silent = 0
    for spec in SPECS:
        plan = plan_scene(spec)
        times = spec.frame_times
        openings = mouth_openings(plan, times)
        for utterance in plan.utterances:
            mouthing += utterance.mouthing
            silent += not utterance.audible and not utterance.mouthing
            if utterance.speaker == OFF_SCREEN:
                span = (times >= utterance.start) & (times <= utterance.end)
                off_screen_with_still_faces += bool(openings[:, span].max(initial=0) == 0)
        rows = annotation_rows(plan)
        assert {r.label for r in rows} <= {"SPEAKING_AUDIBLE", "SPEAKING_NOT_AUDIBLE", NOT_SPEAKING}
    assert mouthing >= 10 and off_screen_with_still_faces >= 5 and silent >= 2


def test_a_speaking_mouth_follows_its_own_voice_and_a_mouthing_one_does_not():
    own, other = [], []
    for spec in SPECS[:6]:
        plan = plan_scene(spec)
        audio = render_audio(plan).mean(axis=0)
        hop = spec.audio_rate // 25
        times = np.arange(len(audio) // hop) / 25
        energy = np.sqrt(np.mean(audio[: len(times) * hop].reshape(-1, hop) ** 2, axis=1))
        openings = mouth_openings(plan, times)
        for utterance in plan.utterances:
            if utterance.speaker == OFF_SCREEN or utterance.end - utterance.start < 1.0:
                continue
            span = (times >= utterance.start) & (times <= utterance.end)
            corr = np.corrcoef(openings[utterance.speaker, span], energy[span])[0, 1]
            (own if utterance.audible else other).append(corr)
    assert np.median(own) > 0.4, own
    assert np.median(other) < 0.2, other


def test_the_real_detector_finds_each_fully_visible_face(synth_root):
    boxes = defaultdict(list)
    for split in ("train", "val"):
        with open(synth_root / "annotations" / f"{split}.csv", newline="") as handle:
            for r in csv.reader(handle):
                boxes[(r[0], r[1])].append((r[7], [float(v) for v in r[2:6]]))
    detector = FaceDetector()
    found = defaultdict(lambda: [0, 0])
    for video in sorted((synth_root / "videos").glob("*.mp4")):
        for t, (image,) in decode(video, ("bgr24",)):
            height, width = image.shape[:2]
            detections = detector(image)
            for entity, (x1, y1, x2, y2) in boxes[(video.stem, f"{t:.3f}")]:
                if x1 <= 0.001 or x2 >= 0.999:
                    continue  # partly outside the frame
                hit = any(min(x2 * width, d.box[2]) > max(x1 * width, d.box[0]) and
                          min(y2 * height, d.box[3]) > max(y1 * height, d.box[1]) for d in detections)
                found[entity][0] += 1
                found[entity][1] += hit
    rates = {entity: hits / total for entity, (total, hits) in found.items()}
    assert len(rates) >= 3 and min(rates.values()) >= 0.95, rates
