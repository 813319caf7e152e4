"""Face boxes ``(x1, y1, x2, y2)``: overlap and interpolation over time, one definition each."""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def interpolate_boxes(times: np.ndarray, known_times: np.ndarray, known_boxes: np.ndarray) -> np.ndarray:
    """Boxes ``(N, 4)`` at ``times (N,)``, each coordinate linear between the boxes ``(K, 4)`` known at
    ``known_times (K,)`` (increasing) and held beyond them."""
    known_boxes = np.asarray(known_boxes, np.float64)
    return np.stack([np.interp(times, known_times, known_boxes[:, j]) for j in range(4)], axis=1)
