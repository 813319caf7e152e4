#!/usr/bin/env python
"""Benchmark training on the default synthetic set: light with SE, light without SE, resnet18.

Prints JSON on stdout: one line per training run as soon as it ends (a long benchmark's finished runs survive an
interruption), then the whole report, indented. Progress goes to stderr.

Per variant: training frames/s, loader frames/s (the training loader itself, with its worker processes),
wall time, and the val mAP of the AV head and of the audio-only and visual-only heads after each epoch; the
final model's val mAP by group with 95% bootstrap intervals (``asd_se/training/breakdowns.py``); and, where both
``light`` and ``light_no_se`` were trained, SE on minus off with a paired interval (the same video draws).
``--steps-only`` variants (resnet18 on CPU by default) are timed over a few steps instead of trained.
``--seeds N`` trains each variant N times (training seeds ``train.seed`` ... ``+ N - 1``) and reports the final
mAP's mean, standard deviation and range over the seeds, overall and by group: the bootstrap interval resamples
validation videos, the seeds show how much one training run moves.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from asd_se.core.ava import Prediction
from asd_se.models import count_parameters
from asd_se.models.config import Config, load_config
from asd_se.training.breakdowns import map_difference
from asd_se.training.evaluate import face_widths, predict_split, summarise
from asd_se.training.loop import Trainer, training_loss, val_map_cell
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# hard: 32 train videos, enough for 10 epochs to learn (16 did not, reliably); 16 val, enough for intervals by group
HARD_SET_VIDEOS, HARD_SET_VAL_EVERY = 48, 3


def default_store(cache: Path, difficulty: str) -> Path:
    """The default synthetic set (16 videos x 30 s; hard: 48) of ``difficulty``, made and prepared once."""
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


def new_trainer(config: Config, store: Path, variant: str) -> Trainer:
    """A trainer for ``config`` on ``store``, its run folder a fresh temporary one."""
    return Trainer(config, store, Path(tempfile.mkdtemp()) / variant)


def train_once(trainer: Trainer) -> tuple[dict, list[Prediction]]:
    """Train one variant with one seed: its figures (wall time, fps, mAP by epoch, the final model's groups with
    intervals) and the final model's val predictions."""
    start = time.perf_counter()
    history = trainer.fit()
    if history[-1]["val_map"] is None:
        raise SystemExit(f"{trainer.store.root}: val mAP is undefined ({history[-1].get('val_note')}); "
                         "the benchmark needs a val split with speaking and silent rows")
    predictions = predict_split(trainer.model, trainer.store, "val", trainer.device, progress=False)
    groups = summarise(predictions, widths=face_widths(trainer.store, "val"), bootstrap=1000).groups
    return {"seed": trainer.config.train.seed, "wall_s": round(time.perf_counter() - start, 1), "epochs": len(history),
            "train_fps": round(sum(h["train_frames"] for h in history) / sum(h["train_seconds"] for h in history), 1),
            "val_map_by_epoch": [val_map_cell(h) for h in history],
            "final": {k: round(history[-1][k], 4) for k in ("val_map", "val_map_audio", "val_map_visual")},
            "best_val_map": round(max(h["val_map"] for h in history), 4),
            "final_map_by_group": {f"{g.group}: {g.name}": g.cell() for g in groups},
            "group_maps": {f"{g.group}: {g.name}": g.map for g in groups if g.map is not None}}, predictions


def spread(values: list[float]) -> str:
    """The mean of mAPs in percent over training seeds, with their standard deviation and range where there are
    several: ``"89.10 ± 1.20 (87.90 to 90.30, 3 seeds)"``."""
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return (f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} "
            f"({min(values):.2f} to {max(values):.2f}, {len(values)} seeds)")


def over_seeds(runs: list[dict]) -> dict:
    """Each group's final mAP over the training seeds (groups defined in every run)."""
    shared = set.intersection(*(set(run["group_maps"]) for run in runs))
    return {group: spread([run["group_maps"][group] for run in runs])
            for group in runs[0]["group_maps"] if group in shared}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="track store (default: the default synthetic set, made once)")
    parser.add_argument("--difficulty", default="standard", choices=("easy", "standard", "hard"),
                        help="of the default synthetic set")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd_se_bench_train")
    parser.add_argument("--variants", default="light,light_no_se,resnet18")
    parser.add_argument("--steps-only", default="resnet18", help="variants only timed, not trained")
    parser.add_argument("--epochs", type=int, default=None, help="override train.epochs")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train each variant this many times (train.seed, train.seed + 1, ...)")
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")  # each epoch on stderr
    store = args.data or default_store(args.cache, args.difficulty)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                          f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU only'}",
               "store": str(store), "variants": {}}
    final_predictions: dict[str, list[list[Prediction]]] = {}
    for variant in args.variants.split(","):
        overrides = list(args.set) + ([f"train.epochs={args.epochs}"] if args.epochs else [])
        config = load_config(CONFIGS / f"{variant}.yaml", overrides)
        trainer = new_trainer(config, store, variant)  # also the first seed's: batches are a function of the seed
        entry = {"parameters": count_parameters(trainer.model), "loader_workers": trainer.loader_workers(),
                 "loader_fps": round(loader_fps(trainer), 1)}
        if variant in args.steps_only.split(","):
            entry["train_fps"] = round(step_fps(trainer, 5), 1)
            entry["note"] = "timed over 5 steps only (too slow to train here)"
        else:
            runs = []
            for offset in range(args.seeds):
                if offset:
                    seeded = replace(config, train=replace(config.train, seed=config.train.seed + offset))
                    trainer = new_trainer(seeded, store, variant)
                run, predictions = train_once(trainer)
                runs.append(run)
                final_predictions.setdefault(variant, []).append(predictions)
                print(json.dumps({variant: {k: v for k, v in run.items() if k != "group_maps"}}), flush=True)
            entry.update(train_fps=runs[0]["train_fps"],
                         final_val_map=spread([100 * run["final"]["val_map"] for run in runs]),
                         final_map_by_group_over_seeds=over_seeds(runs),
                         runs=[{k: v for k, v in run.items() if k != "group_maps"} for run in runs])
        entry["loader_over_train"] = round(entry["loader_fps"] / entry["train_fps"], 1)
        results["variants"][variant] = entry
    for with_se in ("light", "resnet18"):  # SE on minus off, paired (the same seed, the same bootstrap draws)
        if {with_se, f"{with_se}_no_se"} <= final_predictions.keys():
            differences = [map_difference(on, off, 1000) for on, off in
                           zip(final_predictions[with_se], final_predictions[f"{with_se}_no_se"])]
            results[f"se_on_minus_off_{with_se}"] = {
                "per_seed": [d.cell() for d in differences],
                "over_seeds": spread([d.map for d in differences if d.map is not None])}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
