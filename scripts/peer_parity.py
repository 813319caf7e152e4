#!/usr/bin/env python
"""Where asd-se's scores and Light-ASD's own pipeline part, frame by frame, on one video. Prints JSON.

Runs the peer's ``Columbia_test.py`` as ``bench_peer.py`` does (its code, with the detector and device swaps) and
``asd-se render`` with the same weights (``lightasd-talkset-se``: the SE block at identity) and the durations the
peer computes; then, per face track of the peer's, takes the difference apart:

- ``model``: asd-se's model on the peer's own crop and audio files gives the peer's scores (it rounds to 0.1);
- ``audio_lag_ms``: how late the peer's audio runs against the same file decoded by asd-se (cross-correlation);
- ``box_iou``: the peer's boxes against render's, at the same times;
- ``pipelines``: render's scores against the peer's (Pearson r, mean peer − asd-se);
- ``swaps``: asd-se's crops (re-cut from render's boxes with THE crop) heard with the peer's audio, and the peer's
  crops heard with asd-se's audio, each against both sides — which of the two inputs moves the scores.

    python scripts/peer_parity.py --lightasd LIGHT_ASD_CHECKOUT --video VIDEO.mp4
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench_peer import PEER_DURATIONS, add_peer_arguments, check_peer_arguments, pair_track, run_peer

SAMPLE_RATE, PEER_FPS = 16000, 25  # the peer resamples the video to 25 fps and the audio to 16 kHz
SAMPLES_PER_FRAME = SAMPLE_RATE // PEER_FPS
MAX_LAG = 4000  # samples searched each way (0.25 s)


def audio_lag(ours: np.ndarray, theirs: np.ndarray) -> int:
    """Samples by which ``theirs`` runs late against ``ours`` (the same sound, 16 kHz), by cross-correlation."""
    n = min(len(ours), len(theirs)) - 2 * MAX_LAG
    if n <= SAMPLE_RATE // 10:
        return 0
    middle = theirs[MAX_LAG:MAX_LAG + n]
    scores = [float(np.dot(ours[MAX_LAG - lag:MAX_LAG - lag + n], middle)) for lag in range(-MAX_LAG, MAX_LAG + 1)]
    return int(np.argmax(scores)) - MAX_LAG


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """Pearson r and mean ``a − b`` of two per-frame score series."""
    r = float(np.corrcoef(a, b)[0, 1]) if len(a) > 2 and a.std() > 0 and b.std() > 0 else None
    return {"r": None if r is None else round(r, 3), "mean_difference": round(float(np.mean(a - b)), 3)}


def peer_inputs(folder: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """The peer's crop file of a track as it reads it (grey, 224², centre 112²) ``(T, 112, 112)``, and its audio
    ``(N,)`` float in [-1, 1]."""
    import cv2
    from scipy.io import wavfile
    capture, faces = cv2.VideoCapture(str(folder / f"{index:05d}.avi")), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        faces.append(cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (224, 224))[56:168, 56:168])
    capture.release()
    return np.array(faces), wavfile.read(folder / f"{index:05d}.wav")[1].astype(np.float32) / 32768


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_peer_arguments(parser)
    args = parser.parse_args()
    check_peer_arguments(args)
    import torch

    from asd_se.core.crop import face_crop, smooth_crop_boxes
    from asd_se.core.media import decode, read_audio
    from asd_se.models.loading import load_model
    from asd_se.scoring.engine import score_clip

    work = Path(tempfile.mkdtemp(prefix="asd-se-parity-"))
    try:
        run_peer(args.lightasd, args.video, work, args.weights)
        out = work / "render.mp4"
        subprocess.run([sys.executable, "-m", "asd_se", "render", str(args.video), "--checkpoint",
                        "lightasd-talkset-se", "-o", str(out), "--no-review", "--durations",
                        *map(str, PEER_DURATIONS)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        document = json.loads(out.with_suffix(".json").read_text())
        pywork, pycrop = work / "peer_data" / "clip" / "pywork", work / "peer_data" / "clip" / "pycrop"
        with open(pywork / "tracks.pckl", "rb") as tracks_file, open(pywork / "scores.pckl", "rb") as scores_file:
            peer_tracks, peer_scores = pickle.load(tracks_file), pickle.load(scores_file)
        model = load_model("lightasd-talkset-se", torch.device("cpu"))[0]
        decoded = [(time, images[0]) for time, images in decode(args.video, ("gray",), with_audio=False)]
        times, grays = np.array([time for time, _ in decoded]), [gray for _, gray in decoded]
        ours_audio = read_audio(args.video)

        def scores(faces: np.ndarray, audio: np.ndarray) -> np.ndarray:
            audio = np.pad(audio, (0, max(0, len(faces) * SAMPLES_PER_FRAME - len(audio))))
            return score_clip(model, torch.from_numpy(np.ascontiguousarray(faces))[None],
                              torch.from_numpy(audio[:len(faces) * SAMPLES_PER_FRAME])[None],
                              durations=PEER_DURATIONS).scores.numpy()

        report = {"video": str(args.video), "durations": PEER_DURATIONS, "tracks": []}
        for index, (track, theirs) in enumerate(zip(peer_tracks, peer_scores)):
            frames, boxes = np.asarray(track["track"]["frame"]), np.asarray(track["track"]["bbox"])
            faces, audio = peer_inputs(pycrop, index)
            count = min(len(faces), len(theirs))
            theirs, seconds = np.asarray(theirs[:count], np.float64), frames[:count] / PEER_FPS
            own = scores(faces[:count], audio)
            entry = {"peer_track": index, "frames": int(count),
                     "model": {"max_abs_difference": round(float(np.abs(np.round(own, 1) - theirs).max()), 3),
                               **compare(own, theirs)}}
            start = int(round(seconds[0] * SAMPLE_RATE))
            mine = ours_audio[start:start + count * SAMPLES_PER_FRAME]
            entry["audio_lag_ms"] = round(1000 * audio_lag(mine, audio) / SAMPLE_RATE, 1)
            paired = pair_track(frames[:count], boxes, document)
            if paired is not None:  # the same face in render's output: the frames both cover
                iou, candidate, matched = paired
                first, last = matched[0][0], matched[-1][0] + 1  # a run of the peer's frames
                rendered = np.array([candidate["frames"][j]["score"] for _, j in matched])
                render_boxes = smooth_crop_boxes(np.array([candidate["frames"][j]["box"] for _, j in matched]),
                                                 "lightasd")
                source = np.abs(times[None] - seconds[first:last, None]).argmin(axis=1)
                our_faces = np.stack([face_crop(grays[f], tuple(box), style="lightasd")[0]
                                      for f, box in zip(source, render_boxes)])
                our_sound = mine[first * SAMPLES_PER_FRAME:last * SAMPLES_PER_FRAME]
                their_sound = audio[first * SAMPLES_PER_FRAME:last * SAMPLES_PER_FRAME]
                recut, our_crops_their_audio = scores(our_faces, our_sound), scores(our_faces, their_sound)
                their_crops_our_audio, theirs = scores(faces[first:last], our_sound), theirs[first:last]
                entry.update(box_iou=round(iou, 3), pipelines=compare(theirs, rendered),
                             recut_vs_render=compare(recut, rendered),
                             swaps={"asd_se_crops_peer_audio": {"vs_render": compare(our_crops_their_audio, rendered),
                                                                "vs_peer": compare(our_crops_their_audio, theirs)},
                                    "peer_crops_asd_se_audio": {"vs_render": compare(their_crops_our_audio, rendered),
                                                                "vs_peer": compare(their_crops_our_audio, theirs)}})
            report["tracks"].append(entry)
        print(json.dumps(report, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
