#!/usr/bin/env python
"""Benchmark ``asd-se render`` on synthetic videos. Prints JSON.

Cases: 60 s of 640x360 at 25 fps with 1 face and with 3 faces (``--long`` adds 10 minutes of 1280x720, for
the memory bound). Per case: real-time factor (video seconds per wall second, model loading included),
seconds per stage (decode, detect, track, crop, model, se_maps, draw, encode), SE maps as a share of model
time, and the peak RSS of the process that rendered it (each case runs in a fresh process).
Speed does not depend on the weights, so an untrained light model is used unless ``--checkpoint`` is given.
Imports beyond the standard library stay inside the functions: every process render spawns (the case's, and its
detector workers, recycled ones included) imports this script again, as spawned processes do, and 1.5 s of torch
per worker is not what ``asd-se render`` pays.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
from fractions import Fraction
from pathlib import Path

CASES = {"1 face, 60 s 640x360": (1, 60.0, 640, 360), "3 faces, 60 s 640x360": (3, 60.0, 640, 360)}
LONG = {"1 face, 10 min 1280x720": (1, 600.0, 1280, 720)}


def make_video(folder: Path, faces: int, seconds: float, width: int, height: int) -> Path:
    from data_prep.synth.dataset import write_video
    from data_prep.synth.plan import VideoSpec

    path = folder / f"bench_{faces}f_{int(seconds)}s_{width}x{height}.mp4"
    if not path.exists():
        write_video(VideoSpec(path.stem, width, height, Fraction(25), seconds, 16000, 1, seed=7 + faces,
                              face_counts=(faces,)), path)
    return path


def untrained_checkpoint(folder: Path) -> Path:
    """An untrained light model (with its SE block): render's speed does not depend on the weights."""
    from asd_se.models import ActiveSpeakerModel
    from asd_se.models.checkpoint import save_checkpoint
    from asd_se.models.config import load_config

    config = load_config(None)
    checkpoint = folder / "untrained_light.pt"
    save_checkpoint(checkpoint, {"model": ActiveSpeakerModel(config.model).state_dict(), "config": config.to_dict()})
    return checkpoint


def render_case(video: Path, checkpoint: Path, out: Path, detect_every: int, queue) -> None:
    import torch

    from asd_se.render.pipeline import RenderSettings, render_video

    settings = RenderSettings(detect_every=detect_every)
    torch.set_num_threads(os.cpu_count() or 1)
    result = render_video(video, checkpoint, out, settings=settings, progress=False)
    queue.put({"tracks": result.tracks, "frames": result.frames, "video_s": round(result.duration, 2),
               "wall_s": round(result.seconds, 2), "realtime_factor": round(result.duration / result.seconds, 2),
               "stages_s": result.timings,
               "se_maps_share_of_model": round(result.timings.get("se_maps", 0) / result.timings["model"], 4),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def main() -> None:
    import torch

    from asd_se.render.pipeline import RenderSettings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint (default: untrained light model)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_render")
    parser.add_argument("--long", action="store_true", help="also render 10 minutes of 720p (memory bound)")
    parser.add_argument("--detect-every", type=int, default=RenderSettings.detect_every)
    parser.add_argument("--case", action="append", default=[], metavar="FACES,SECONDS,WxH",
                        help="render this case instead of the standard ones (repeatable), e.g. 7,12,1280x720")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    checkpoint = args.checkpoint or untrained_checkpoint(args.cache)
    settings = RenderSettings(detect_every=args.detect_every)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
               "settings": {"detect_every": settings.detect_every, "preset": settings.preset}, "cases": {}}
    context = multiprocessing.get_context("spawn")
    cases = {**CASES, **(LONG if args.long else {})}
    if args.case:
        cases = {}
        for case in args.case:
            faces, seconds, size = case.split(",")
            width, height = map(int, size.split("x"))
            cases[f"{faces} faces, {float(seconds):g} s {size}"] = (int(faces), float(seconds), width, height)
    for name, (faces, seconds, width, height) in cases.items():
        video = make_video(args.cache, faces, seconds, width, height)
        queue = context.Queue()
        worker = context.Process(target=render_case, args=(video, checkpoint, args.cache / "out.mp4", settings.detect_every,
                                                                 queue))
        worker.start()
        results["cases"][name] = queue.get()
        worker.join()
        print(json.dumps({name: results["cases"][name]}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
