#!/usr/bin/env python
"""Issue-12 goal: Light-ASD with an SE block, fine-tuned from the imported AVA weights vs trained from scratch,
on a synthetic set (default: the default set) for the same number of epochs. Prints JSON: both val mAP curves
and timings. On 2 CPU cores Light-ASD trains at about 33 frames/s (an epoch of the default set: ~11 min).

    python scripts/bench_finetune.py --weights asd_se/weights/light-asd/pretrain_AVA_CVPR.model
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

from asd_se.models.config import Config, load_config
from asd_se.models.lightasd_weights import LIGHTASD
from asd_se.models.published import import_published, model_config
from asd_se.training.loop import Trainer, val_map_cell
from data_prep.prep import PrepConfig, prepare
from data_prep.store import StoreSettings
from data_prep.synth.dataset import SynthConfig, make_dataset


def lightasd_store(cache: Path, synth: SynthConfig) -> Path:
    """The synthetic set ``synth`` prepared with Light-ASD's crop."""
    name = f"{synth.videos}x{synth.minutes:g}min"
    store = cache / f"store_lightasd_{name}"
    if not (store / "index.jsonl").exists():
        make_dataset(cache / f"data_{name}", synth, workers=2)
        prepare(PrepConfig((cache / f"data_{name}" / "annotations",), cache / f"data_{name}" / "videos", store,
                           workers=2, settings=StoreSettings(crop="lightasd")))
    return store


def curve(run: Path, config: Config, store: Path, init: Path | None) -> dict:
    started = time.perf_counter()
    history = Trainer(config, store, run, init=init).fit()
    return {"val_map": [val_map_cell(h) for h in history], "seconds": round(time.perf_counter() - started)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, required=True, help="Light-ASD's pretrain_AVA_CVPR.model")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--videos", type=int, default=SynthConfig.videos, help="synthetic videos")
    parser.add_argument("--minutes", type=float, default=SynthConfig.minutes, help="minutes per video")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "asd-se-bench")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    store = lightasd_store(args.cache, SynthConfig(videos=args.videos, minutes=args.minutes))
    imported = args.cache / "lightasd_ava.pt"
    import_published(args.weights, imported, LIGHTASD)
    config = load_config(None, [f"train.epochs={args.epochs}"], Config(model=model_config(LIGHTASD, se=True)))
    runs = {"scratch": curve(args.cache / f"run_scratch_{store.name}", config, store, None),
            "finetune_from_ava": curve(args.cache / f"run_finetune_{store.name}", config, store, imported)}
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU",
                      "set": f"{args.videos} videos × {args.minutes:g} min", "epochs": args.epochs,
                      "model": "lightasd + SE (identity start)", **runs}, indent=1))


if __name__ == "__main__":
    main()
