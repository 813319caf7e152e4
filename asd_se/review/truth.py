"""A render against ground truth (``render --annotations``): the clip's AP and accuracy over its annotation
rows (the rows its CSV scores), and the stretches where the decision is wrong, for the review page's error list.

A row is decided "speaking" where its probability is at least ``DECISION`` (0.5, the colour change of the
drawn boxes); a false positive is decided speaking where the truth is not, a false negative the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from asd_se.core.metrics import MetricUndefined, average_precision

DECISION = 0.5


@dataclass(frozen=True)
class ErrorSpan:
    """Consecutive rows of one track with the same wrong decision: ``kind`` "FP" or "FN", seconds."""

    track: str
    kind: str
    start: float
    end: float


@dataclass(frozen=True)
class TruthSummary:
    """The clip against its ground truth: ``ap`` (None where no row is speaking), ``accuracy``, ``rows``."""

    ap: float | None
    accuracy: float
    rows: int
    errors: list[ErrorSpan]


def _truth(track: dict) -> np.ndarray:
    """``(R, 3)`` time s, speaking (0/1), probability of a track's ground-truth rows, in time order."""
    rows = np.asarray(track.get("truth") or np.zeros((0, 3)), np.float64).reshape(-1, 3)
    return rows[np.argsort(rows[:, 0], kind="stable")]


def error_spans(name: str, truth: np.ndarray) -> list[ErrorSpan]:
    """Runs of wrong decisions in one track's ``truth (R, 3)``; a run ends one row spacing after its last row."""
    if not len(truth):
        return []
    step = float(np.median(np.diff(truth[:, 0]))) if len(truth) > 1 else 0.04
    decided = truth[:, 2] >= DECISION
    speaking = truth[:, 1] > 0.5
    kinds = np.where(decided & ~speaking, 1, np.where(~decided & speaking, 2, 0))
    spans, start = [], 0
    for i in range(1, len(kinds) + 1):
        if i == len(kinds) or kinds[i] != kinds[start] or truth[i, 0] - truth[i - 1, 0] > 1.5 * step:
            if kinds[start]:
                spans.append(ErrorSpan(name, "FP" if kinds[start] == 1 else "FN", round(float(truth[start, 0]), 3),
                                       round(float(truth[i - 1, 0] + step), 3)))
            start = i
    return spans


def summarise(tracks: list[dict]) -> TruthSummary | None:
    """The clip's ground-truth summary, None when no track carries ground truth."""
    truths = [(t["name"], _truth(t)) for t in tracks if t.get("truth")]
    if not truths:
        return None
    rows = np.concatenate([rows for _, rows in truths])
    try:
        ap: float | None = average_precision(rows[:, 2], rows[:, 1] > 0.5)
    except MetricUndefined:
        ap = None
    accuracy = float(np.mean((rows[:, 2] >= DECISION) == (rows[:, 1] > 0.5)))
    errors = sorted((span for name, rows_ in truths for span in error_spans(name, rows_)),
                    key=lambda s: (s.start, s.track))
    return TruthSummary(ap, accuracy, len(rows), errors)
