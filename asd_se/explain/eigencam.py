"""Eigen-CAM (Muhammad and Yeasin, 2020): the maps projected on their first principal component. No gradients,
no class: the unweighted baseline."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer


def principal_map(activations: torch.Tensor) -> torch.Tensor:
    """``(T, C, h, w)`` -> ``(T, h, w)``: each frame's maps projected on their first principal component (signed
    so the mean activation is positive along it)."""
    frames, channels, height, width = activations.shape
    pixels = activations.reshape(frames, channels, height * width).transpose(1, 2)  # (T, hw, C)
    centred = pixels - pixels.mean(dim=1, keepdim=True)
    # the projection on the first right singular vector equals sigma_1 · u_1, the top eigenvector of the
    # small (hw × hw) Gram matrix: much cheaper than an SVD of (hw × C)
    values, vectors = torch.linalg.eigh(centred @ centred.transpose(1, 2))
    projection = vectors[..., -1] * values[..., -1:].clamp(min=0).sqrt()  # (T, hw)
    # a principal axis has no sign: take the one along which the mean activation is positive
    sign = torch.sign((projection * pixels.mean(dim=2)).sum(dim=1, keepdim=True))
    return (projection * torch.where(sign == 0, torch.ones_like(sign), sign)).reshape(frames, height, width)


class EigenCam(Explainer):
    name = "eigencam"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        return principal_map(activations)
