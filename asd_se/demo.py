"""``asd-se demo``: the whole pipeline on synthetic data, end to end, with no downloads."""

from __future__ import annotations

import logging
from pathlib import Path

from asd_se.config import load_config
from asd_se.evaluate import predict_split, summarise, write_predictions
from asd_se.train import Trainer
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

log = logging.getLogger(__name__)


def run_demo(out: Path, workers: int = 2, epochs: int = 6) -> list[str]:
    """synth -> prep -> train -> evaluate under ``out``; returns the lines to show the user."""
    out = Path(out)
    data, store, run = out / "data", out / "store", out / "run"
    counts = make_dataset(data, SynthConfig(), workers=workers)
    summary = prepare(PrepConfig((data / "annotations",), data / "videos", store, workers=workers))
    trainer = Trainer(load_config(None, [f"train.epochs={epochs}"]), store, run, resume=(run / "last.pt").exists())
    trainer.fit()
    predictions = predict_split(trainer.model, trainer.store, "val", trainer.device)
    write_predictions(run / "val_predictions.csv", predictions)
    return [f"synthetic dataset: {data} ({counts['videos']} videos, {counts['rows']} annotation rows)",
            f"track store: {store}", summary.render(),
            f"training run: {run} (best.pt, metrics.jsonl, curves.png — look at curves.png first)",
            f"val predictions (official AVA format): {run / 'val_predictions.csv'}",
            summarise(predictions).render()]
