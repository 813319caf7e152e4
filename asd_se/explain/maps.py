"""What every explainer does to its raw maps: ReLU, scale each map to [0, 1], upsample onto the face crop."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def normalise(maps: torch.Tensor) -> torch.Tensor:
    """``(T, h, w)`` -> ReLU, then each map divided by its peak (all-zero maps stay zero)."""
    positive = maps.float().clamp(min=0)
    peak = positive.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, positive / peak.clamp(min=1e-12), torch.zeros_like(positive))


def upsample(maps: torch.Tensor, size: int) -> torch.Tensor:
    """``(T, h, w)`` in [0, 1] -> ``(T, size, size)`` by bicubic interpolation, clipped back to [0, 1]."""
    upsampled = F.interpolate(maps[:, None].float(), size=(size, size), mode="bicubic", align_corners=False)
    return upsampled[:, 0].clamp(0, 1)


def peaks(maps: torch.Tensor) -> torch.Tensor:
    """``(T, H, W)`` -> ``(T, 2)`` the ``(x, y)`` of each map's maximum, as fractions of its width and height
    (pixel centres, so a peak in the first of ``W`` columns is at ``0.5 / W``)."""
    height, width = maps.shape[-2:]
    flat = maps.reshape(len(maps), -1).argmax(dim=1)
    return torch.stack([(flat % width + 0.5) / width, (flat // width + 0.5) / height], dim=1)
