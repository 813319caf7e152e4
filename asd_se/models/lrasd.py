"""LR-ASD (Liao et al., "LR-ASD: Lightweight and Robust Network for Active Speaker Detection", IJCV 2025), Light-ASD's
successor, in asd-se's model interface: its published weights load through a name map
(``models/lrasd_weights.py``) and the SE block can sit on its last visual maps (128 × 14 × 14, before the spatial
max). Its pre-processing is Light-ASD's (the ``lightasd`` MFCC front end and crop, the same face normalisation).

Faces ``(B, T, 112, 112)`` grey 0-255, audio ``(B, 640·T)`` 16 kHz (or with the front end's context) -> ASDOutput.
What differs from Light-ASD: each block is one chain of four convolutions (two over space or coefficients, kernels 5
then 3, then two over time, 5 then 3) instead of two scales added; audio and visual embeddings are concatenated and
gated per channel (a 1×1 convolution, BatchNorm, sigmoid) instead of added; the back end runs two 64-unit GRUs, one
forward and one over the reversed sequence, both on the gated input, and gates their concatenation the same way.
"""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.config import ModelConfig
from asd_se.models.framewise import ConvStep, FrameMaxPool, batch_norm
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.lightasd import CHANNELS, TwoClassModel
from asd_se.models.se import SEBlock

KERNELS = (5, 3)  # the first and second convolution of each axis pair


def chain_block(visual: bool, in_channels: int, out_channels: int, down: bool = False) -> nn.Sequential:
    """Four steps: space (visual: (1, k, k), the first optionally strided) or coefficients (audio: (k, 1)) at
    kernels 5 then 3 — to half the channels, then all — and time at kernels 5 then 3."""
    conv, norm = (nn.Conv3d, nn.BatchNorm3d) if visual else (nn.Conv2d, nn.BatchNorm2d)
    if visual:
        across = [(1, k, k) for k in KERNELS]
        along = [(k, 1, 1) for k in KERNELS]
        stride = (1, 2, 2) if down else 1
    else:
        across, along, stride = [(k, 1) for k in KERNELS], [(1, k) for k in KERNELS], 1
    half = out_channels // 2
    return nn.Sequential(ConvStep(conv, norm, in_channels, half, across[0], stride),
                         ConvStep(conv, norm, half, out_channels, across[1]),
                         ConvStep(conv, norm, out_channels, out_channels, along[0]),
                         ConvStep(conv, norm, out_channels, out_channels, along[1]))


class LrAsdVisualEncoder(nn.Module):
    """``(B, 1, T, 112, 112)`` -> maps ``(B, 128, T, 14, 14)``: block (1→32, stride 2), max-pool, block (32→64),
    max-pool, block (64→128)."""

    temporal_radius = 9  # three blocks whose temporal kernels (5, then 3) reach 3 frames either side
    out_channels = CHANNELS
    chain = True  # its modules run one after another, in order (models/streaming.py)

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(chain_block(True, 1, 32, down=True), FrameMaxPool(3, 2, 1),
                                    chain_block(True, 32, 64), FrameMaxPool(3, 2, 1), chain_block(True, 64, CHANNELS))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.layers(faces)


class LrAsdAudioEncoder(nn.Module):
    """MFCC ``(B, 13, 4·T)`` -> ``(B, T, 128)``: three blocks, a max-pool over time (kernel 3, stride 2) after the
    first two, then the mean over the coefficients."""

    temporal_radius = 6  # video frames an output reads either side: 24 coefficient frames (kernels 5+3, pools 3/2)

    def __init__(self) -> None:
        super().__init__()
        pool = (1, 3), (1, 2), (0, 1)
        self.layers = nn.Sequential(chain_block(False, 1, 32), nn.MaxPool2d(*pool), chain_block(False, 32, 64),
                                    nn.MaxPool2d(*pool), chain_block(False, 64, CHANNELS))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.layers(mfcc.unsqueeze(1)).mean(dim=2).transpose(1, 2)


class ChannelGate(nn.Module):
    """Two sequences ``(B, T, C1)``, ``(B, T, C2)`` concatenated to ``(B, T, C)`` and each channel scaled by
    sigmoid(BatchNorm(1×1 convolution over channels))."""

    def __init__(self, channels: int):
        super().__init__()
        self.mix = nn.Conv1d(channels, channels, 1, bias=False)
        self.bn = batch_norm(nn.BatchNorm1d, channels)

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        joined = torch.cat([first, second], dim=2).transpose(1, 2)  # (B, C, T)
        return (joined * torch.sigmoid(self.bn(self.mix(joined)))).transpose(1, 2)


class GatedTwoWayGru(nn.Module):
    """``(B, T, 256)`` -> ``(B, T, 128)``: a forward GRU and a GRU over the reversed sequence (64 units each,
    both reading the input), their outputs gated by a ChannelGate."""

    def __init__(self, dim: int = 2 * CHANNELS):
        super().__init__()
        self.forward_gru = nn.GRU(dim, dim // 4, batch_first=True)
        self.backward_gru = nn.GRU(dim, dim // 4, batch_first=True)
        self.gate = ChannelGate(dim // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ahead = self.forward_gru(x)[0]
        behind = self.backward_gru(x.flip(1))[0].flip(1)
        return self.gate(ahead, behind)


class LrAsdModel(TwoClassModel):
    """LR-ASD with an optional SE block on its last visual maps; audio and visual embeddings concatenated and
    gated (``ChannelGate``), then the gated two-way GRU."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.frontend = MfccFrontEnd(config.frontend)
        self.visual = LrAsdVisualEncoder()
        self.se = SEBlock(CHANNELS, config.se_reduction, config.se_squeeze, config.se_identity) if config.se else None
        self.audio = LrAsdAudioEncoder()
        self.fusion = ChannelGate(2 * CHANNELS)
        self.backend = GatedTwoWayGru()
        self.head = nn.Linear(CHANNELS, 2)
        self.visual_head = nn.Linear(CHANNELS, 2)
        self.audio_head = nn.Linear(CHANNELS, 1)

    def fuse(self, sound: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self.backend(self.fusion(sound, visual))  # audio first, as LR-ASD concatenates them
