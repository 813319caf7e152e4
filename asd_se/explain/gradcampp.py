"""Grad-CAM++ (Chattopadhay et al., 2018): pixel-wise weights on the positive gradients, in the closed form for
an exponential output (second and third derivatives as powers of the first)."""

from __future__ import annotations

import torch

from asd_se.explain.base import Explainer


class GradCamPlusPlus(Explainer):
    name = "gradcampp"
    needs_gradients = True

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, output) -> torch.Tensor:
        squared, cubed = gradients ** 2, gradients ** 3
        total = activations.sum(dim=(2, 3), keepdim=True)  # (T, C, 1, 1)
        denominator = 2 * squared + total * cubed
        alpha = torch.where(gradients != 0, squared / torch.where(denominator != 0, denominator,
                                                                    torch.ones_like(denominator)),
                            torch.zeros_like(gradients))
        return (alpha * gradients.clamp(min=0)).sum(dim=(2, 3))
