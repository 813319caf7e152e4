#!/usr/bin/env python
"""Models' mAP on a split of an ``asd-se talkset`` store, overall and per kind of negative, with 95% bootstrap
intervals (videos resampled). Prints JSON. The baseline a model trained on real faces must beat.

    asd-se talkset CLIPS --out SET && asd-se prep --dataset talkset --root SET --out STORE --crop lightasd
    python scripts/bench_talkset.py --data STORE --categories SET/categories/val.csv

"negatives vs all positives: KIND" ranks every speaking face-frame against the not-speaking face-frames of one
kind (own: the silences of a face's own clip; other-voice; shifted; composite-voice: the kept voice's silences;
composite-other: faces beside the speaker, lips moving to another's voice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def main() -> None:
    from asd_se.checkpoint import load_model
    from asd_se.core.devices import resolve_device
    from asd_se.evaluate import face_widths, predict_split, read_categories, summarise
    from data_prep.store import TrackStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="track store (prepared with --crop lightasd)")
    parser.add_argument("--categories", type=Path, required=True, help="SET/categories/<split>.csv")
    parser.add_argument("--split", default="val")
    parser.add_argument("--models", nargs="+", default=["lightasd-talkset", "lightasd-ava", "lrasd-talkset",
                                                        "lrasd-ava"], help="shipped model names or checkpoints")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    store, categories = TrackStore.open(args.data), read_categories(args.categories)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU", "split": args.split,
               "models": {}}
    device = resolve_device("cpu")
    for name in args.models:
        started = time.perf_counter()
        model, config = load_model(name, device)
        store.require_crop(config.model.crop, name)
        predictions = predict_split(model, store, args.split, device)
        summary = summarise(predictions, categories, face_widths(store, args.split), args.bootstrap)
        results["models"][name] = {
            "seconds": round(time.perf_counter() - started, 1), "rows": summary.rows,
            "positives": summary.positives,
            "groups": {f"{g.group}: {g.name}" if g.group != "all" else "all": {
                "map": None if g.map is None else round(g.map, 2),
                "interval": None if g.low is None else [round(g.low, 2), round(g.high, 2)], "rows": g.rows,
                "positives": g.positives}
                for g in summary.groups if g.group in ("all", "category", "negatives vs all positives")}}
        print(json.dumps({name: results["models"][name]["groups"].get("all")}), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
