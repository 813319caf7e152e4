#!/usr/bin/env python
"""Benchmark `asd-se prep` against per-row seeking (how classic AVA prep scripts cut faces). Prints JSON.

Data: synthetic 1280x720 25 fps videos with 2-3 faces (made once, cached in --cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from asd_se.core.annotations import read_annotations
from asd_se.core.crop import face_crop
from asd_se.core.media import decode
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset


def seek_per_row(video: Path, timestamp: float) -> np.ndarray:
    """The classic way: seek to the row's time, decode forward to it, return that frame (gray)."""
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        container.seek(int(timestamp / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time >= timestamp - 1e-3:
                return frame.to_ndarray(format="gray")
    raise RuntimeError(f"{video}: nothing at {timestamp}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-rows", type=int, default=150, help="rows timed for the per-row baseline")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_prep_data")
    args = parser.parse_args()

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
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or platform.system()}",
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
    }, indent=1))
    shutil.rmtree(store.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
