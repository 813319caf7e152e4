"""SE heatmaps (Roxo et al., "How to Squeeze An Explanation Out of Your Model", arXiv 2412.05134).

The SE vector ranks the channels of the visual encoder's last maps; the maps of the channels it rates highest
(SE value above mean + 1.282·std, the top ~10% of a normal distribution; or exactly the top fraction by rank)
are averaged, passed through ReLU, normalised to [0, 1] and upsampled onto the face crop. It reuses the
forward pass that made the decision: no gradients, no second pass.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from asd_se.explain.maps import normalise, upsample

Z_TOP_10 = 1.282  # standard-normal quantile of 0.9


def select_channels(se_weights: torch.Tensor, mode: str = "threshold", top: float = 0.1) -> torch.Tensor:
    """Boolean mask ``(..., C)`` of the channels an SE vector ``(..., C)`` rates highest.

    ``threshold``: above mean + 1.282·std of the vector. ``rank``: the ``top`` fraction (at least one channel).
    If the threshold picks nothing (a flat vector), the single highest channel is used.
    """
    if mode == "rank":
        count = max(1, int(round(top * se_weights.shape[-1])))
        cutoff = se_weights.topk(count, dim=-1).values[..., -1:]
        return se_weights >= cutoff
    if mode != "threshold":
        raise ValueError(f"SE channel selection must be 'threshold' or 'rank', not {mode!r}")
    mean = se_weights.mean(dim=-1, keepdim=True)
    std = se_weights.std(dim=-1, keepdim=True, unbiased=False)
    mask = se_weights > mean + Z_TOP_10 * std
    best = F.one_hot(se_weights.argmax(dim=-1), se_weights.shape[-1]).bool()
    return torch.where(mask.any(dim=-1, keepdim=True), mask, best)


def se_maps(feature_maps: torch.Tensor, se_weights: torch.Tensor, mode: str = "threshold",
            top: float = 0.1) -> torch.Tensor:
    """Maps ``(T, h, w)`` in [0, 1] at feature resolution, from maps ``(T, C, h, w)`` and an SE vector ``(C,)``
    (clip squeeze) or ``(T, C)`` (frame squeeze): the mean of the selected channels, ReLU, peak-normalised."""
    mask = select_channels(se_weights, mode, top).to(feature_maps.dtype)
    mask = mask.expand(feature_maps.shape[0], -1) if mask.dim() == 1 else mask  # (T, C)
    return normalise(torch.einsum("tchw,tc->thw", feature_maps, mask) / mask.sum(dim=1)[:, None, None])


def se_heatmaps(feature_maps: torch.Tensor, se_weights: torch.Tensor, size: int, mode: str = "threshold",
                top: float = 0.1) -> torch.Tensor:
    """Heatmaps ``(T, size, size)`` in [0, 1] on the face crop: ``se_maps`` upsampled bicubically."""
    return upsample(se_maps(feature_maps, se_weights, mode, top), size)
