"""Average precision with the official AVA-ActiveSpeaker semantics (ActivityNet
``get_ava_active_speaker_performance.py``).

- Ground truth and predictions are joined one-to-one by key (video_id, timestamp, entity_id); a missing or
  extra prediction is an error, never silently dropped.
- Only ``SPEAKING_AUDIBLE`` is positive; ``SPEAKING_NOT_AUDIBLE`` and ``NOT_SPEAKING`` are negatives.
- Rows sorted by score, descending; precision = TP / rank, recall = TP / positives; VOC-style AP over the
  monotone (non-increasing) precision envelope. Ties keep ground-truth order (a stable sort; the official
  script's pandas quicksort leaves tie order unspecified).
"""

from __future__ import annotations

import numpy as np

from asd_se.core.ava import POSITIVE, Key


class MetricUndefined(ValueError):
    """AP cannot be computed (no positives): say so instead of printing 0 or NaN."""


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP of ``scores`` ``(N,)`` against boolean ``positive`` ``(N,)``."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    total = int(positive.sum())
    if total == 0:
        raise MetricUndefined(f"no SPEAKING_AUDIBLE rows among {len(positive)}: average precision is undefined")
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(positive[order])
    precision = hits / np.arange(1, len(order) + 1)
    recall = hits / total
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    changed = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[changed] - recall[changed - 1]) * precision[changed]))


def ava_average_precision(truth: dict[Key, str], scores: dict[Key, float]) -> float:
    """AP of predictions joined to ground-truth labels by key, one to one."""
    missing, extra = truth.keys() - scores.keys(), scores.keys() - truth.keys()
    if missing or extra:
        raise ValueError(f"predictions do not match the ground truth one to one: {len(missing)} rows without a "
                         f"prediction (e.g. {sorted(missing)[:2]}), {len(extra)} predictions without a row "
                         f"(e.g. {sorted(extra)[:2]})")
    keys = list(truth)
    return average_precision(np.array([scores[k] for k in keys]), np.array([truth[k] == POSITIVE for k in keys]))
