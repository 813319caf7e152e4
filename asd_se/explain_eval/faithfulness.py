"""How faithful is a heatmap to the model's own score? (Localisation against the mouth box: ``localisation.py``.)

Every function works per frame on crop-sized heatmaps ``(N, S, S)`` in [0, 1]; aggregation is the caller's.
  - deletion / insertion (RISE, Petsiuk et al. 2018): pixels removed from (inserted into) the crop in the
    heatmap's order, most important first, the speaking probability measured after each step; the area under
    that curve (deletion: lower is better; insertion: higher is better);
  - Average Drop / Increase in Confidence (Grad-CAM++ paper): the crop kept where its heatmap is high, scored
    again. The paper multiplies the image by the map; on grey face crops that leaves a dark image that every
    method's score collapses on (99% drop for all), so the crop is blended into the same blurred baseline the
    deletion curve uses: ``heat · crop + (1 − heat) · baseline``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # faces (T, S, S) uint8 -> speaking probabilities (T,)


def perturbation_curves(score: ScoreFn, faces: torch.Tensor, heat: torch.Tensor, baseline: torch.Tensor,
                        steps: int = 10, insertion: bool = False) -> torch.Tensor:
    """``(steps + 1, T)`` speaking probabilities as ``k/steps`` of each crop's pixels, in its heatmap's order
    (ties in raster order), are replaced by ``baseline`` (deletion) or put back onto it (insertion). All
    ``T`` frames of the clip are perturbed together, each by its own map, and scored in one pass per step."""
    frames, size = faces.shape[0], faces.shape[-1]
    order = torch.argsort(-heat.reshape(frames, -1), dim=1, stable=True)  # most important first
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(size * size, device=order.device).expand(frames, -1).contiguous())
    rank = rank.reshape(frames, size, size)
    curve = []
    for step in range(steps + 1):
        chosen = rank < round(step / steps * size * size)  # the top pixels at this step
        keep_original = chosen if insertion else ~chosen
        curve.append(score(torch.where(keep_original, faces, baseline)))
    return torch.stack(curve)


def curve_auc(curve: torch.Tensor) -> torch.Tensor:
    """``(steps + 1, T)`` -> ``(T,)`` area under each curve over [0, 1] (trapezoid rule)."""
    steps = curve.shape[0] - 1
    return (curve[1:] + curve[:-1]).sum(dim=0) / (2 * steps)


def explanation_masked(faces: torch.Tensor, heat: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """The "explanation map" input of Average Drop: each crop ``(T, S, S)`` uint8 where its heatmap is high,
    the baseline where it is low."""
    blend = faces.float() * heat + baseline.float() * (1 - heat)
    return blend.round().clamp(0, 255).to(torch.uint8)


def average_drop_increase(original: torch.Tensor, explained: torch.Tensor) -> tuple[float, float]:
    """Average Drop % = mean(max(0, Y − O) / Y) · 100 and Increase in Confidence % = share of O > Y · 100,
    for scores ``Y (N,)`` on the crops and ``O (N,)`` on the explanation-masked crops."""
    if len(original) == 0:
        return float("nan"), float("nan")
    drop = (original - explained).clamp(min=0) / original.clamp(min=1e-12)
    return float(100 * drop.mean()), float(100 * (explained > original).float().mean())


def mean_or_none(values: list[float] | np.ndarray) -> float | None:
    """The mean, or None for no values (reported as n/a, never as 0)."""
    return float(np.mean(values)) if len(values) else None
