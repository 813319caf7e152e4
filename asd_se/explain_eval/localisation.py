"""Does a heatmap point at the mouth? Localisation against a box, per frame, on crop-sized heatmaps
``(N, S, S)`` in [0, 1] and boxes ``(N, 4)`` = ``(x1, y1, x2, y2)`` in crop pixels; aggregation is the caller's.

  - pointing game (Zhang et al., 2018): the heatmap's peak lies inside the box — strictly, or within a tolerance
    (Zhang et al. allow 15 pixels of the original image; explain-eval scales that to the crop). A flat map has
    no peak: a miss;
  - relevance mass accuracy (Arras et al., 2022; "mouth energy" in earlier reports): the share of the heatmap's
    mass inside the box;
  - relevance rank accuracy (Arras et al., 2022): of the K highest pixels, K the box's area, the share inside
    the box.
"""

from __future__ import annotations

import torch

TOLERANCE_PX = 15.0  # the standard pointing game's tolerance, in pixels of the original image


def _inside(boxes: torch.Tensor, size: int, device: torch.device) -> torch.Tensor:
    """``(N, size, size)`` bool masks on ``device`` of ``boxes (N, 4)`` = ``(x1, y1, x2, y2)`` in crop pixels
    (pixel centres)."""
    boxes = boxes.float().to(device)
    centres = torch.arange(size, dtype=torch.float32, device=device) + 0.5
    xs = (centres[None, :] >= boxes[:, 0:1]) & (centres[None, :] <= boxes[:, 2:3])  # (N, S)
    ys = (centres[None, :] >= boxes[:, 1:2]) & (centres[None, :] <= boxes[:, 3:4])
    return ys[:, :, None] & xs[:, None, :]


def pointing_hits(heat: torch.Tensor, boxes: torch.Tensor, tolerance: torch.Tensor | float = 0.0) -> torch.Tensor:
    """``(N,)`` bool: the peak of each heatmap ``(N, S, S)`` lies inside its box ``(N, 4)``, or within
    ``tolerance`` crop pixels of it (a number, or one per frame ``(N,)``)."""
    size = heat.shape[-1]
    flat = heat.reshape(len(heat), -1)
    peak = flat.argmax(dim=1)
    x, y = (peak % size).float() + 0.5, (peak // size).float() + 0.5
    boxes = boxes.float().to(heat.device)
    dx = (boxes[:, 0] - x).clamp(min=0) + (x - boxes[:, 2]).clamp(min=0)
    dy = (boxes[:, 1] - y).clamp(min=0) + (y - boxes[:, 3]).clamp(min=0)
    tolerance = torch.as_tensor(tolerance, dtype=torch.float32, device=heat.device)
    has_peak = flat.amax(dim=1) > flat.amin(dim=1)
    return (torch.sqrt(dx ** 2 + dy ** 2) <= tolerance) & has_peak


def energy_inside(heat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``(N,)`` relevance mass accuracy: the share of each heatmap's total inside its box (0 for an all-zero
    map)."""
    inside = _inside(boxes, heat.shape[-1], heat.device)
    total = heat.sum(dim=(1, 2))
    return torch.where(total > 0, (heat * inside).sum(dim=(1, 2)) / total.clamp(min=1e-12), torch.zeros_like(total))


def rank_inside(heat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``(N,)`` relevance rank accuracy: of each heatmap's K highest pixels (K = the box's pixel count), the share
    inside its box (0 for an empty box or an all-zero map)."""
    inside = _inside(boxes, heat.shape[-1], heat.device).reshape(len(heat), -1)
    flat = heat.reshape(len(heat), -1)
    counts = inside.sum(dim=1)
    order = flat.argsort(dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=heat.device).expand_as(order))
    top = ranks < counts[:, None]
    hits = (top & inside).sum(dim=1).float()
    valid = (counts > 0) & (flat.amax(dim=1) > 0)
    return torch.where(valid, hits / counts.clamp(min=1).float(), torch.zeros_like(hits))
