"""Squeeze-and-Excitation over video feature maps, returning the SE vector that the heatmaps are built from."""

from __future__ import annotations

import torch
from torch import nn


class SEBlock(nn.Module):
    """SE block (Hu et al.) for ``(B, C, *S)`` maps: the ASD models' ``(B, C, T, h, w)``, or any model's
    ``(B, C, H, W)`` / ``(B, C, T, H, W)`` (``asd_se.explain.anymodel``).

    ``squeeze="clip"`` averages over all of S: one SE vector ``(B, C)`` per input (a whole clip, an image).
    ``squeeze="frame"`` (maps ``(B, C, T, ...)``) averages over all but T: one SE vector per frame ``(B, T, C)``.
    Returns the rescaled maps (same shape as the input) and the SE vector (values in (0, 1)).

    ``identity_start``: for inserting the block into a trained model without changing what it computes. The
    gate becomes 2·sigmoid (values in (0, 2)) and the last layer starts at zero, so every channel is scaled by
    exactly 1 until training moves it; the channels' ranking, all SE maps use, is that of the sigmoid.
    """

    def __init__(self, channels: int, reduction: int = 4, squeeze: str = "clip", identity_start: bool = False):
        super().__init__()
        self.squeeze = squeeze
        hidden = max(channels // reduction, 4)
        self.excite = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                    nn.Linear(hidden, channels), nn.Sigmoid())
        self.gain = 2.0 if identity_start else 1.0
        if identity_start:
            nn.init.zeros_(self.excite[2].weight)
            nn.init.zeros_(self.excite[2].bias)

    @property
    def untrained(self) -> bool:
        """True while the last layer's weights are all zero (the identity start, never moved by training): the
        SE vector is then the same for every input, so it ranks no channel above another for any decision."""
        return bool((self.excite[2].weight == 0).all())

    def weigh(self, means: torch.Tensor) -> torch.Tensor:
        """Per-frame spatial means ``(B, C, T)`` of the maps -> the SE vector: ``(B, C)`` (clip squeeze) or
        ``(B, T, C)`` (frame squeeze)."""
        if self.squeeze == "clip":
            return self.gain * self.excite(means.mean(dim=2))
        return self.gain * self.excite(means.transpose(1, 2))

    @staticmethod
    def scale(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, C, T, ...)`` (maps, or any per-channel summary of them) with each channel scaled by the SE
        vector ``weights`` (``weigh``'s)."""
        per_frame = weights[:, :, None] if weights.dim() == 2 else weights.transpose(1, 2)  # (B, C, 1|T)
        return x * per_frame.reshape(*per_frame.shape, *([1] * (x.dim() - 3)))

    def forward(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``maps (B, C, *S)`` -> the rescaled maps (same shape) and the SE vector (``weigh``'s)."""
        means = maps.flatten(3).mean(dim=3) if self.squeeze == "frame" else maps.flatten(2).mean(dim=2, keepdim=True)
        weights = self.weigh(means)
        return self.scale(maps, weights), weights
