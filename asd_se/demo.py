"""``asd-se demo``: the whole pipeline on synthetic data, end to end, with no downloads."""

from __future__ import annotations

import logging
from pathlib import Path

from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

log = logging.getLogger(__name__)


def run_demo(out: Path, workers: int = 2) -> list[str]:
    """Make a synthetic dataset and its track store under ``out``; returns the lines to show the user."""
    out = Path(out)
    data, store = out / "data", out / "store"
    counts = make_dataset(data, SynthConfig(), workers=workers)
    summary = prepare(PrepConfig((data / "annotations",), data / "videos", store, workers=workers))
    return [f"synthetic dataset: {data} ({counts['videos']} videos, {counts['rows']} annotation rows)",
            f"track store: {store}", summary.render()]
