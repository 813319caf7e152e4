#!/usr/bin/env python
"""Benchmark ``asd-se live``. Prints JSON (one line per case as it finishes, then the whole).

Parts (``--parts``):
- ``latency``: per lookahead (0, 0.2, 0.5, 1, 2 s), 640x360 with 2 faces read at its own pace (``--realtime``), SE
  maps on: latency from each frame's arrival to its decision (p50 / p95 / max), frames dropped, degradations.
- ``throughput``: 1, 2 and 4 faces at 640x360 and 1280x720: frames/s read as fast as it decodes (what the machine
  sustains, from the first frame read to the end: model loading and warm-up not counted), and the same video at its
  own pace (25 fps): whether it held (every frame decided, none dropped) and whether detection was made rarer.
- ``memory``: 10 minutes of 640x360 with 2 faces as fast as it decodes: RSS of the live process and its detector
  processes, sampled every second, at the end against the first minute.
- ``accuracy``: a synthetic AVA-format set (``--data``, e.g. ``asd-se demo``'s ``data/``; its val split) and a
  model trained on it (``--accuracy-checkpoint``): mAP of the live decisions per lookahead against offline
  ``asd-se render`` (both find faces themselves; an annotation row takes the probability of the face on its frame
  overlapping its box by IoU >= 0.5, else 0), with 95% intervals over videos, and live minus offline with a paired
  interval (each draw of videos scores both on the same rows).
- ``onnx``: 2 faces at 640x360 as fast as it decodes, torch against onnxruntime (``asd-se export onnx``).
Each case runs ``python -m asd_se live`` in a fresh process; videos are made once by the synthetic world.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from bench_render import make_video  # scripts/: the synthetic benchmark videos, made once

from asd_se.core.annotations import read_csv
from asd_se.core.ava import Prediction
from asd_se.core.boxes import iou
from asd_se.core.media import probe
from asd_se.core.metrics import average_precision
from asd_se.models.zoo import DEFAULT_MODEL
from asd_se.review.document import read_render
from asd_se.training.breakdowns import map_difference, overall_interval

LOOKAHEADS = (0.0, 0.2, 0.5, 1.0, 2.0)
SIZES = {"640x360": (640, 360), "1280x720": (1280, 720)}


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the detector processes), MB."""
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(child) for child in (task / "children").read_text().split()]
    except OSError:
        pass
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def run_live(source: Path, checkpoint: str, *options: str, sample_memory: bool = False) -> dict:
    """One ``asd-se live`` run in a fresh process: its JSON lines' summary, wall time and (optionally) RSS."""
    with tempfile.TemporaryDirectory() as folder:
        jsonl = Path(folder) / "live.jsonl"
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "asd_se", "live", str(source), "--checkpoint", checkpoint,
                                    "--jsonl", str(jsonl), *options], stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, float]] = []

        def sample() -> None:
            while process.poll() is None:
                samples.append((time.perf_counter() - started, _rss_mb(process.pid)))
                time.sleep(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        if sample_memory:
            sampler.start()
        _, stderr = process.communicate()
        wall = time.perf_counter() - started
        if process.returncode != 0:
            raise RuntimeError(f"live failed ({process.returncode}): {stderr[-2000:]}")
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    frames = [line for line in lines if "frame" in line]
    events = [line["event"] for line in lines if "event" in line]
    result = {"wall_s": round(wall, 1), "stream_s": lines[-1]["seconds"], "frames": len(frames),
              "latency": lines[-1]["latency"],
              "dropped": lines[-1]["dropped"], "degraded": events.count("degraded"), "lines": frames}
    if sample_memory:
        result["rss_mb"] = samples
    return result


def _summary(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in ("lines", "rss_mb")}


def part_latency(cache: Path, checkpoint: str, seconds: float, options: list[str], lookaheads: list[float]) -> dict:
    video = make_video(cache, 2, seconds, 640, 360)
    return {f"lookahead {lookahead:g} s": _summary(run_live(video, checkpoint, "--realtime", "--lookahead",
                                                             str(lookahead), *options)) for lookahead in lookaheads}


def part_throughput(cache: Path, checkpoint: str, seconds: float, options: list[str]) -> dict:
    out = {}
    for size, (width, height) in SIZES.items():
        for faces in (1, 2, 4):
            video = make_video(cache, faces, seconds, width, height)
            fast = run_live(video, checkpoint, *options)
            paced = run_live(video, checkpoint, "--realtime", *options)
            frames = int(round(probe(video).duration * 25))
            out[f"{faces} faces {size}"] = {
                "frames_per_s": round(fast["frames"] / fast["stream_s"], 1), "fast_stream_s": fast["stream_s"],
                "paced": _summary(paced),
                "held_25fps": paced["dropped"] == 0 and paced["frames"] >= frames - 1,
                "rungs_degraded": paced["degraded"]}
            print(json.dumps({f"{faces} faces {size}": out[f"{faces} faces {size}"]}), flush=True)
    return out


def part_memory(cache: Path, checkpoint: str, minutes: float) -> dict:
    video = make_video(cache, 2, 60.0 * minutes, 640, 360)
    result = run_live(video, checkpoint, sample_memory=True)
    samples = result["rss_mb"]
    wall = result["wall_s"]
    first = [rss for t, rss in samples if t <= wall / minutes] or [samples[0][1]]  # the first minute of input
    return {"video_min": minutes, "wall_s": wall, "frames": result["frames"],
            "rss_first_minute_max_mb": round(max(first), 1), "rss_end_mb": round(samples[-1][1], 1),
            "rss_peak_mb": round(max(rss for _, rss in samples), 1),
            "end_vs_first_minute": round(samples[-1][1] / max(first) - 1, 3),
            "rss_every_minute_mb": [round(samples[min(len(samples) - 1, int(k * wall / minutes))][1], 1)
                                    for k in range(int(minutes) + 1)]}


def _frame_faces(records: list[tuple[float, list[float], float]]) -> dict[int, list[tuple[list[float], float]]]:
    """(time s, box px, prob) per face-frame -> faces per 25 fps frame index."""
    faces: dict[int, list] = {}
    for stamp, box, prob in records:
        faces.setdefault(int(round(stamp * 25)), []).append((box, prob))
    return faces


def _predictions(rows, faces_by_video: dict[str, dict], sizes: dict[str, tuple[int, int]]) -> list[Prediction]:
    """Every annotation row scored by the face on its frame that overlaps its box most (IoU >= 0.5), else 0."""
    out = []
    for row in rows:
        width, height = sizes[row.video_id]
        box = np.array(row.box) * [width, height, width, height]
        candidates = faces_by_video[row.video_id].get(int(round(row.timestamp * 25)), [])
        score = 0.0
        if candidates:
            overlaps = iou(box[None], np.array([c[0] for c in candidates]))[0]
            best = int(np.argmax(overlaps))
            score = candidates[best][1] if overlaps[best] >= 0.5 else 0.0
        out.append(Prediction(row.video_id, f"{row.timestamp:.2f}", list(row.box), row.label, row.entity_id, score,
                              score, score))
    return out


def _map(predictions: list[Prediction]) -> dict:
    scores = np.array([p.score for p in predictions])
    positive = np.array([p.label == "SPEAKING_AUDIBLE" for p in predictions])
    low, high = overall_interval(predictions, bootstrap=1000)
    return {"map": round(100 * average_precision(scores, positive), 2), "ci95": [low, high]}


def part_accuracy(data: Path, checkpoint: str, videos: int, lookaheads: list[float], options: list[str]
                  ) -> dict:
    rows, _ = read_csv(data / "annotations" / "val.csv")
    ids = sorted({row.video_id for row in rows})[:videos]
    rows = [row for row in rows if row.video_id in ids]
    paths = {video_id: data / "videos" / f"{video_id}.mp4" for video_id in ids}
    sizes = {video_id: (probe(path).width, probe(path).height) for video_id, path in paths.items()}
    out = {"videos": len(ids), "rows": len(rows)}
    offline: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for video_id, path in paths.items():
            target = Path(folder) / f"{video_id}.mp4"
            subprocess.run([sys.executable, "-m", "asd_se", "render", str(path), "--checkpoint", checkpoint, "-o",
                            str(target), "--no-review"], check=True, capture_output=True)
            document = read_render(target.with_suffix(".json"))
            offline[video_id] = _frame_faces([(f["time"], f["box"], f["prob"]) for track in document.tracks
                                              for f in track["frames"]])
    reference = _predictions(rows, offline, sizes)
    out["offline render"] = _map(reference)
    print(json.dumps({"offline render": out["offline render"]}), flush=True)
    for lookahead in lookaheads:
        live = {}
        for video_id, path in paths.items():
            result = run_live(path, checkpoint, "--lookahead", str(lookahead), *options)
            live[video_id] = _frame_faces([(line["time"], face["box"], face["prob"]) for line in result["lines"]
                                           for face in line["faces"]])
        predictions = _predictions(rows, live, sizes)
        difference = map_difference(predictions, reference)
        out[f"live, lookahead {lookahead:g} s"] = {**_map(predictions), "minus_offline": round(difference.map, 2),
                                                   "minus_offline_ci95": [difference.low, difference.high]}
        print(json.dumps({f"live, lookahead {lookahead:g} s": out[f"live, lookahead {lookahead:g} s"]}), flush=True)
    return out


def part_onnx(cache: Path, checkpoint: str, seconds: float) -> dict:
    video = make_video(cache, 2, seconds, 640, 360)
    onnx = cache / f"{Path(checkpoint).stem}.onnx"
    if not onnx.exists():
        subprocess.run([sys.executable, "-m", "asd_se", "export", "onnx", checkpoint, "-o", str(onnx)], check=True,
                       capture_output=True)
    out = {}
    for runtime, model in (("torch", checkpoint), ("onnx", str(onnx))):
        result = run_live(video, model, "--runtime", runtime)
        out[runtime] = {"frames_per_s": round(result["frames"] / result["stream_s"], 1), **_summary(result)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=DEFAULT_MODEL, help=f"the model timed (default: render's, "
                                                                    f"{DEFAULT_MODEL})")
    parser.add_argument("--parts", default="latency,throughput,memory,onnx",
                        help="comma-separated: latency, throughput, memory, accuracy, onnx")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the latency/throughput videos")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory video")
    parser.add_argument("--data", type=Path, help="a synthetic AVA-format set (accuracy)")
    parser.add_argument("--accuracy-checkpoint", help="a model trained on --data (accuracy)")
    parser.add_argument("--videos", type=int, default=100, help="val videos used for accuracy (default all)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_live")
    parser.add_argument("--open-maps", action="store_true", help="live's --open-maps (latency, throughput, accuracy)")
    parser.add_argument("--lookaheads", type=float, nargs="+", default=list(LOOKAHEADS), metavar="S",
                        help="live's --lookahead values for the latency and accuracy parts (default: 0 0.2 0.5 1 2)")
    parser.add_argument("--hop", type=float, help="live's --hop for the latency, throughput and accuracy parts "
                                                 "(default: live's)")
    parser.add_argument("--context", type=float, help="live's --context (past kept) for the latency, throughput and "
                                                     "accuracy parts (default: live's)")
    args = parser.parse_args()
    options = [flag for name, value in (("--hop", args.hop), ("--context", args.context)) if value is not None
               for flag in (name, str(value))] + (["--open-maps"] if args.open_maps else [])
    args.cache.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
               "checkpoint": args.checkpoint, "live_options": options}
    for part in args.parts.split(","):
        if part == "latency":
            results[part] = part_latency(args.cache, args.checkpoint, args.seconds, options, args.lookaheads)
        elif part == "throughput":
            results[part] = part_throughput(args.cache, args.checkpoint, args.seconds, options)
        elif part == "memory":
            results[part] = part_memory(args.cache, args.checkpoint, args.minutes)
        elif part == "accuracy":
            if args.data is None or args.accuracy_checkpoint is None:
                parser.error("accuracy needs --data and --accuracy-checkpoint")
            results[part] = part_accuracy(args.data, args.accuracy_checkpoint, args.videos, args.lookaheads, options)
        elif part == "onnx":
            results[part] = part_onnx(args.cache, args.checkpoint, args.seconds)
        else:
            parser.error(f"unknown part {part!r}")
        print(json.dumps({part: results[part]}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
