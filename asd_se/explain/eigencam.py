"""Eigen-CAM (Muhammad and Yeasin, 2020): the maps projected on their first principal component. No gradients,
no class: the unweighted baseline."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer


def principal_map(activations: torch.Tensor) -> torch.Tensor:
    """``(N, C, *S)`` -> ``(N, *S)``: each item's maps projected on their first principal component over its
    positions (signed so the mean activation is positive along it)."""
    items, channels, spatial = activations.shape[0], activations.shape[1], activations.shape[2:]
    pixels = activations.reshape(items, channels, -1).transpose(1, 2)  # (N, P, C)
    centred = pixels - pixels.mean(dim=1, keepdim=True)
    # the projection on the first right singular vector v_1 is sigma_1 · u_1: from the eigenvectors of the
    # smaller of the two Gram matrices (P × P or C × C), much cheaper than an SVD
    if centred.shape[1] <= channels:
        values, vectors = _eigh(centred @ centred.transpose(1, 2))
        projection = vectors[..., -1] * values[..., -1:].clamp(min=0).sqrt()  # (N, P)
    else:
        vectors = _eigh(centred.transpose(1, 2) @ centred)[1]
        projection = (centred @ vectors[..., -1:])[..., 0]  # (N, P)
    # a principal axis has no sign: take the one along which the mean activation is positive
    sign = torch.sign((projection * pixels.mean(dim=2)).sum(dim=1, keepdim=True))
    return (projection * torch.where(sign == 0, torch.ones_like(sign), sign)).reshape(items, *spatial)


def _eigh(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors of symmetric ``(N, K, K)``; LAPACK's single precision solver can
    fail to converge on a Gram matrix with many exactly-zero rows (unselected or dead channels): then in double."""
    try:
        return torch.linalg.eigh(gram)
    except torch.linalg.LinAlgError:
        values, vectors = torch.linalg.eigh(gram.double())
        return values.to(gram.dtype), vectors.to(gram.dtype)


class EigenCam(Explainer):
    name = "eigencam"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        return principal_map(activations)
