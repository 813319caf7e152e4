"""Grad-CAM (Selvaraju et al., 2017): each channel weighted by the spatial mean of its gradient."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer


class GradCam(Explainer):
    name = "gradcam"
    needs_gradients = True

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        return gradients.mean(dim=(2, 3))
