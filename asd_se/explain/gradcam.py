"""Grad-CAM (Selvaraju et al., 2017): channels weighted by the spatial mean of the logit's gradient."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer


class GradCam(Explainer):
    name = "gradcam"
    needs_gradients = True

    def raw_maps(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        weights = gradients.float().mean(dim=(2, 3))  # (T, C)
        return torch.einsum("tchw,tc->thw", activations, weights)
