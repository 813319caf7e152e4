#!/usr/bin/env python
"""Benchmark `asd-se prep`. Prints JSON. Parts (``--parts``, all by default):

- ``classic``: prep against per-row seeking (how classic AVA prep scripts cut faces); 1280x720 videos, 2-3 faces.
- ``span``: a 10-minute 1280x720 file whose annotations cover 2 minutes in its middle, against the same
  2 minutes as their own file (and against decoding the long file whole): wall time and peak RSS of one worker.
- ``check``: ``asd-se prep --check`` over 50 synthetic videos.
- ``1080p``: prep throughput on 1920x1080 input (face-frames/s, 2 workers).

Data: synthetic, made once and cached in --cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

from asd_se.core.annotations import read_annotations
from asd_se.core.crop import face_crop
from asd_se.core.media import decode
from data_prep.check import check
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import Packaging, SynthConfig, make_dataset

ONE_WORKER = """
import json, sys, time
from pathlib import Path
from data_prep.prep import PrepConfig, prepare
root, out, seek = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "seek"
start = time.perf_counter()
summary = prepare(PrepConfig((root / "annotations",), root / "videos", out, workers=1, seek=seek))
print(json.dumps({"wall_s": time.perf_counter() - start, "face_frames": summary.face_frames}))
"""


def seek_per_row(video: Path, timestamp: float) -> np.ndarray:
    """The classic way: seek to the row's time, decode forward to it, return that frame (gray)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        container.seek(int(timestamp / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time >= timestamp - 1e-3:
                return frame.to_ndarray(format="gray")
    raise RuntimeError(f"{video}: nothing at {timestamp}")


def one_worker(root: Path, seek: bool) -> dict:
    """Prep ``root`` in a fresh process (in-process prep, so that process is the worker): its wall time and
    peak RSS."""
    out = Path(tempfile.mkdtemp()) / "store"
    process = subprocess.Popen([sys.executable, "-c", ONE_WORKER, str(root), str(out), "seek" if seek else "whole"],
                               stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"prep of {root} failed")
    shutil.rmtree(out.parent, ignore_errors=True)
    return {**json.loads(stdout), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def span_part(cache: Path) -> dict:
    """The annotated 2 minutes inside a 10-minute 720p file vs cut out as their own file."""
    clip = SynthConfig(videos=1, minutes=2.0, seed=21, size=(1280, 720), fps=25, face_counts=(2,))
    roots = {"cut_out_2min": (cache / "span_cut", clip),
             "inside_10min": (cache / "span_long", replace(clip, packaging=Packaging(lead=240.0, tail=240.0)))}
    results = {}
    for name, (root, config) in roots.items():
        if not (root / "annotations" / "val.csv").exists():
            make_dataset(root, config, workers=2)
    for name, (root, _) in roots.items():
        results[name] = one_worker(root, seek=True)
    results["inside_10min_decoded_whole"] = one_worker(roots["inside_10min"][0], seek=False)
    cut, inside = results["cut_out_2min"], results["inside_10min"]
    results["time_ratio"] = round(inside["wall_s"] / cut["wall_s"], 3)
    results["rss_ratio"] = round(inside["peak_rss_mb"] / cut["peak_rss_mb"], 3)
    results["goals"] = "time_ratio <= 1.2, rss_ratio <= 1.1"
    for entry in results.values():
        if isinstance(entry, dict):
            entry["wall_s"] = round(entry["wall_s"], 2)
    return results


def check_part(cache: Path) -> dict:
    """``prep --check`` over 50 small synthetic videos."""
    root = cache / "check50"
    if not (root / "annotations" / "val.csv").exists():
        make_dataset(root, SynthConfig(videos=50, minutes=0.1, seed=5), workers=2)
    start = time.perf_counter()
    report = check(PrepConfig((root / "annotations",), root / "videos", Path("unused"), workers=2))
    return {"videos": len(report.videos), "wall_s": round(time.perf_counter() - start, 2),
            "problems": len(report.problems), "goal": "under 10 s"}


def hd_part(cache: Path, workers: int) -> dict:
    """Prep throughput on 1080p input."""
    root = cache / "hd1080"
    if not (root / "annotations" / "val.csv").exists():
        make_dataset(root, SynthConfig(videos=4, minutes=0.5, seed=12, size=(1920, 1080), fps=25,
                                       face_counts=(2, 3)), workers=2)
    store = Path(tempfile.mkdtemp()) / "store"
    start = time.perf_counter()
    summary = prepare(PrepConfig((root / "annotations",), root / "videos", store, workers=workers))
    wall = time.perf_counter() - start
    shutil.rmtree(store.parent, ignore_errors=True)
    return {"videos": 4, "seconds_each": 30, "size": "1920x1080", "workers": workers, "wall_s": round(wall, 2),
            "face_frames": summary.face_frames, "face_frames_per_s": round(summary.face_frames / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="classic,span,check,1080p")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-rows", type=int, default=150, help="rows timed for the per-row baseline")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_prep_data")
    args = parser.parse_args()
    parts = args.parts.split(",")
    results = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}"}
    if "classic" in parts:
        results["classic"] = classic_part(args)
    if "span" in parts:
        results["span"] = span_part(args.cache)
    if "check" in parts:
        results["check"] = check_part(args.cache)
    if "1080p" in parts:
        results["prep_1080p"] = hd_part(args.cache, args.workers)
    print(json.dumps(results, indent=1))


def classic_part(args: argparse.Namespace) -> dict:
    """Prep against per-row seeking, store bytes per face-frame."""

    config = SynthConfig(videos=args.videos, minutes=args.seconds / 60, seed=11, size=(1280, 720), fps=25,
                         face_counts=(2, 3))
    if not (args.cache / "annotations" / "val.csv").exists():
        make_dataset(args.cache, config, workers=args.workers)
    rows, _ = read_annotations([args.cache / "annotations"])
    videos = sorted((args.cache / "videos").glob("*.mp4"))

    start = time.perf_counter()
    frames = sum(1 for video in videos for _ in decode(video, ("gray",), with_audio=False))
    decode_s = time.perf_counter() - start

    store = Path(tempfile.mkdtemp()) / "store"
    start = time.perf_counter()
    summary = prepare(PrepConfig((args.cache / "annotations",), args.cache / "videos", store, workers=args.workers))
    prep_s = time.perf_counter() - start
    image_bytes = audio_bytes = 0
    for npz in (store / "videos").glob("*.npz"):
        with np.load(npz) as data:
            image_bytes += sum(data[k].nbytes for k in data.files if k.endswith("_jpeg"))
            audio_bytes += sum(data[k].nbytes for k in data.files if k.endswith("_audio"))
    store_bytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())

    sample = random.Random(0).sample(rows, min(args.baseline_rows, len(rows)))
    by_id = {v.stem: v for v in videos}
    jpg_sizes = []
    start = time.perf_counter()
    for row in sample:
        gray = seek_per_row(by_id[row.video_id], row.timestamp)
        height, width = gray.shape
        box = (row.box[0] * width, row.box[1] * height, row.box[2] * width, row.box[3] * height)
        crop, _ = face_crop(gray, box)
        cv2.imencode(".jpg", crop)
    seek_s = time.perf_counter() - start
    for video in videos[:1]:  # what per-frame JPGs of the raw (colour) boxes cost on disk
        wanted: dict[str, list] = {}
        for row in rows:
            if row.video_id == video.stem:
                wanted.setdefault(f"{row.timestamp:.3f}", []).append(row)
        for t, (bgr,) in decode(video, ("bgr24",), with_audio=False):
            for row in wanted.get(f"{t:.3f}", []):
                height, width = bgr.shape[:2]
                x1, y1, x2, y2 = (int(row.box[0] * width), int(row.box[1] * height), int(row.box[2] * width),
                                  int(row.box[3] * height))
                jpg_sizes.append(len(cv2.imencode(".jpg", bgr[y1:y2, x1:x2])[1]))

    face_frames_per_s = summary.face_frames / prep_s
    rows_per_s_seek = len(sample) / seek_s
    rows_per_s_prep = len(rows) / prep_s
    shutil.rmtree(store.parent, ignore_errors=True)
    return {
        "data": {"videos": len(videos), "seconds_each": args.seconds, "size": "1280x720", "fps": 25,
                 "rows": len(rows), "face_frames_25fps": summary.face_frames, "tracks": summary.tracks},
        "prep": {"workers": args.workers, "wall_s": round(prep_s, 2),
                 "face_frames_per_s": round(face_frames_per_s, 1), "rows_per_s": round(rows_per_s_prep, 1)},
        "decode_frames_per_s_1proc": round(frames / decode_s, 1),
        "bytes_per_face_frame": {"images": round(image_bytes / summary.face_frames),
                                 "audio": round(audio_bytes / summary.face_frames),
                                 "whole_store": round(store_bytes / summary.face_frames),
                                 "per_frame_jpg_of_raw_box": round(float(np.mean(jpg_sizes))),
                                 "images_vs_jpg_ratio": round(image_bytes / summary.face_frames /
                                                              float(np.mean(jpg_sizes)), 3)},
        "seek_per_row_baseline": {"rows_timed": len(sample), "rows_per_s": round(rows_per_s_seek, 2),
                                  "speedup_of_prep": round(rows_per_s_prep / rows_per_s_seek, 1)},
    }


if __name__ == "__main__":
    main()
