"""Audio encoder: MFCC ``(B, 13, 4·T)`` -> per-video-frame embedding ``(B, T, D)``."""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.frontend import N_MFCC


def _conv(in_channels: int, out_channels: int, stride: int) -> list[nn.Module]:
    return [nn.Conv1d(in_channels, out_channels, 5, stride, 2, bias=False), nn.BatchNorm1d(out_channels),
            nn.ReLU(inplace=True)]


class AudioEncoder(nn.Module):
    """Normalises the coefficients, then three 1D convolutions; two stride-2 steps map 100 fps onto 25 fps."""

    temporal_radius = 3  # video frames an output reads either side: 12 coefficient frames (kernels 5, 5/2, 5/2, 3)

    def __init__(self, embed_dim: int = 128):
        super().__init__()
        self.norm = nn.BatchNorm1d(N_MFCC)
        self.layers = nn.Sequential(*_conv(N_MFCC, 64, 1), *_conv(64, 128, 2), *_conv(128, embed_dim, 2),
                                    nn.Conv1d(embed_dim, embed_dim, 3, 1, 1))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.layers(self.norm(mfcc)).transpose(1, 2)
