#!/usr/bin/env python
"""Benchmark training on the default synthetic set: light with SE, light without SE, resnet18. Prints JSON.

Per variant: training frames/s, loader frames/s (the training loader itself, with its worker processes),
wall time, and the val mAP of the AV head and of the audio-only and visual-only heads after each epoch; the
final model's val mAP by group with 95% bootstrap intervals (``asd_se/breakdowns.py``); and, where both
``light`` and ``light_no_se`` were trained, SE on minus off with a paired interval (the same video draws).
``--steps-only`` variants (resnet18 on CPU by default) are timed over a few steps instead of trained.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from asd_se.breakdowns import map_difference
from asd_se.config import load_config
from asd_se.evaluate import face_widths, predict_split, summarise
from asd_se.models import count_parameters
from asd_se.train import Trainer, training_loss, val_map_cell
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
HARD_SET_VIDEOS, HARD_SET_VAL_EVERY = 24, 3  # 16 train, 8 val: enough validation videos for intervals by group


def default_store(cache: Path, difficulty: str) -> Path:
    """The default synthetic set (16 videos x 30 s; hard: 24) of ``difficulty``, made and prepared once."""
    cache = cache if difficulty == "standard" else cache / difficulty
    if not (cache / "store" / "index.jsonl").exists():
        workers = min(8, os.cpu_count() or 2)
        config = SynthConfig(difficulty=difficulty)
        if difficulty == "hard":  # more validation videos: intervals for every group
            config = replace(config, videos=HARD_SET_VIDEOS, val_every=HARD_SET_VAL_EVERY)
        make_dataset(cache / "data", config, workers=workers)
        prepare(PrepConfig((cache / "data" / "annotations",), cache / "data" / "videos", cache / "store",
                           workers=workers))
    return cache / "store"


def loader_fps(trainer: Trainer, batches: int = 40) -> float:
    """Frames/s the training loader delivers (its configured worker processes, augmentation on), after the
    first batch (worker start-up)."""
    frames, start = 0, None
    for number, (_, _, labels) in enumerate(trainer.loader(0)):
        if number == 0:
            start = time.perf_counter()
        else:
            frames += labels.numel()
        if number == batches:
            break
    return frames / (time.perf_counter() - start)


def step_fps(trainer: Trainer, steps: int) -> float:
    """Frames/s of ``steps`` optimizer steps (after one warm-up step)."""
    loader = iter(trainer.loader(0))
    trainer.model.train()
    frames, start = 0, None
    for step in range(steps + 1):
        faces, audio, labels = next(loader)
        loss = training_loss(trainer.model(faces, audio), labels, trainer.config.train.aux_weight)
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
        if step == 0:
            start = time.perf_counter()
        else:
            frames += labels.numel()
    return frames / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="track store (default: the default synthetic set, made once)")
    parser.add_argument("--difficulty", default="standard", choices=("easy", "standard", "hard"),
                        help="of the default synthetic set")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_train")
    parser.add_argument("--variants", default="light,light_no_se,resnet18")
    parser.add_argument("--steps-only", default="resnet18", help="variants only timed, not trained")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    store = args.data or default_store(args.cache, args.difficulty)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
               "store": str(store), "variants": {}}
    final_predictions = {}
    for variant in args.variants.split(","):
        overrides = list(args.set) + ([f"train.epochs={args.epochs}"] if args.epochs else [])
        config = load_config(CONFIGS / f"{variant}.yaml", overrides)
        run_dir = Path(tempfile.mkdtemp()) / variant
        trainer = Trainer(config, store, run_dir)
        entry = {"parameters": count_parameters(trainer.model), "loader_workers": trainer.loader_workers(),
                 "loader_fps": round(loader_fps(trainer), 1)}
        if variant in args.steps_only.split(","):
            entry["train_fps"] = round(step_fps(trainer, 5), 1)
            entry["note"] = "timed over 5 steps only (too slow to train here)"
        else:
            start = time.perf_counter()
            history = trainer.fit()
            entry.update(wall_s=round(time.perf_counter() - start, 1), epochs=len(history),
                         train_fps=round(sum(h["train_frames"] for h in history) /
                                         sum(h["train_seconds"] for h in history), 1),
                         val_map_by_epoch=[val_map_cell(h) for h in history],
                         final={k: round(history[-1][k], 4) for k in ("val_map", "val_map_audio", "val_map_visual")},
                         best_val_map=round(max(h["val_map"] for h in history), 4))
            final_predictions[variant] = predict_split(trainer.model, trainer.store, "val", trainer.device,
                                                       progress=False)
            groups = summarise(final_predictions[variant], widths=face_widths(trainer.store, "val"),
                               bootstrap=1000).groups
            entry["final_map_by_group"] = {f"{g.group}: {g.name}": g.cell() for g in groups}
        entry["loader_over_train"] = round(entry["loader_fps"] / entry["train_fps"], 1)
        results["variants"][variant] = entry
        print(json.dumps({variant: entry}), flush=True)
    for with_se in ("light", "resnet18"):  # SE on minus off, paired (the same bootstrap draws for both)
        if {with_se, f"{with_se}_no_se"} <= final_predictions.keys():
            difference = map_difference(final_predictions[with_se], final_predictions[f"{with_se}_no_se"], 1000)
            results[f"se_on_minus_off_{with_se}"] = difference.cell()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
