"""The crop-centre baseline: not an explanation but what every localisation score must beat. Face crops put the
mouth a little below their centre, so on tight crops a map that always peaks at the centre already scores well on
the tolerant pointing game (≈ 0.99 on real talking faces, ±15 px) and ≈ 0.5 strictly; a method is measured
against it on the same frames."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer

CENTRE_SIGMA = 0.25  # of the map's side: the bump's width


def centre_bump(frames: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """``(T, h, w)``: the same Gaussian bump on the map's centre in every frame."""
    ys = (torch.arange(height, device=device) + 0.5) / height - 0.5
    xs = (torch.arange(width, device=device) + 0.5) / width - 0.5
    bump = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * CENTRE_SIGMA ** 2))
    return bump.expand(frames, height, width).clone()


class CentreBaseline(Explainer):
    name = "centre"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        frames, _, height, width = activations.shape
        return centre_bump(frames, height, width, activations.device)
