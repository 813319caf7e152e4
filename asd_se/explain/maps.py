"""What every explainer does to its raw maps: weight the channels, ReLU, scale each map to [0, 1], upsample onto
the input. Shapes are ``(N, *S)``: the ASD models' ``(T, h, w)`` per clip, any model's ``(B, H, W)`` or
``(B, T, H, W)`` (``anymodel.py``)."""

from __future__ import annotations

import torch
from torch.nn import functional as F

UPSAMPLING = {1: "linear", 2: "bicubic", 3: "trilinear"}  # by the number of spatial dimensions


def channel_sum(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``activations (N, C, *S)`` weighted per channel by ``weights (N, C)`` and summed over C -> ``(N, *S)``."""
    return torch.einsum("nc...,nc->n...", activations, weights.to(activations.dtype))


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """``(N, *S)`` -> ReLU, then each map divided by its peak (all-zero maps stay zero)."""
    positive = maps.float().clamp(min=0)
    peak = positive.flatten(1).amax(dim=1).reshape(-1, *([1] * (maps.dim() - 1)))
    return torch.where(peak > 0, positive / peak.clamp(min=1e-12), torch.zeros_like(positive))


def upsample(maps: torch.Tensor, size: int | tuple[int, ...]) -> torch.Tensor:
    """``(N, *S)`` in [0, 1] -> ``(N, *size)`` (an int: the same length on every axis), by bicubic
    interpolation for 2-D maps (trilinear for 3-D, linear for 1-D), clipped back to [0, 1]."""
    dims = maps.dim() - 1
    size = (size,) * dims if isinstance(size, int) else tuple(size)
    upsampled = F.interpolate(maps[:, None].float(), size=size, mode=UPSAMPLING[dims], align_corners=False)
    return upsampled[:, 0].clamp(0, 1)


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """``(T, H, W)`` -> ``(T, 2)`` the ``(x, y)`` of each map's maximum, as fractions of its width and height
    (pixel centres, so a peak in the first of ``W`` columns is at ``0.5 / W``)."""
    height, width = maps.shape[-2:]
    flat = maps.reshape(len(maps), -1).argmax(dim=1)
    return torch.stack([(flat % width + 0.5) / width, (flat // width + 0.5) / height], dim=1)
