"""Light-ASD (Liao et al., "A Light Weight Model for Active Speaker Detection", CVPR 2023) in asd-se's model
interface, so its published weights load through a name map (``models/lightasd_weights.py``) and the SE block can
sit on its last visual maps (128 × 14 × 14, before the spatial max), where explanations come from.

Faces ``(B, T, 112, 112)`` grey 0-255 (normalised here as (x / 255 − 0.4161) / 0.1688), audio ``(B, 640·T)``
16 kHz (or with the ``lightasd`` MFCC front end's context, ``(B, 1 + 640·T + 240)``) -> ASDOutput. Every
BatchNorm: eps 0.001, momentum 0.01.
"""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.config import ModelConfig
from asd_se.models.framewise import FrameMaxPool, batch_norm, conv_bn_relu, same_padding
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.output import ASDOutput
from asd_se.models.se import SEBlock
from asd_se.models.visual import TwoStreamModel

FACE_MEAN, FACE_STD = 0.4161, 0.1688
CHANNELS = 128


class Branch(nn.Module):
    """One scale of a multi-scale block: a convolution along the first axis pair, one along the other, each
    followed by BatchNorm and ReLU (visual: spatial k×k then temporal k; audio: coefficients k then time k)."""

    def __init__(self, conv: type[nn.Module], norm: type[nn.Module], in_channels: int, out_channels: int,
                 first: tuple, second: tuple, stride: tuple):
        super().__init__()
        self.first = conv(in_channels, out_channels, first, stride, same_padding(first), bias=False)
        self.first_bn = batch_norm(norm, out_channels)
        self.second = conv(out_channels, out_channels, second, 1, same_padding(second), bias=False)
        self.second_bn = batch_norm(norm, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_bn_relu(conv_bn_relu(x, self.first, self.first_bn), self.second, self.second_bn)


class MultiScaleBlock(nn.Module):
    """Branches at kernel sizes 3 and 5 added, then a 1×1 convolution, BatchNorm, ReLU."""

    def __init__(self, visual: bool, in_channels: int, out_channels: int, down: bool = False):
        super().__init__()
        conv, norm = (nn.Conv3d, nn.BatchNorm3d) if visual else (nn.Conv2d, nn.BatchNorm2d)
        if visual:  # (T, H, W): spatial (1, k, k), optionally strided, then temporal (k, 1, 1)
            shapes = [((1, k, k), (k, 1, 1)) for k in (3, 5)]
            stride = (1, 2, 2) if down else (1, 1, 1)
        else:  # (13 coefficients, time): (k, 1) then (1, k)
            shapes = [((k, 1), (1, k)) for k in (3, 5)]
            stride = (1, 1)
        self.branches = nn.ModuleList(Branch(conv, norm, in_channels, out_channels, first, second, stride)
                                      for first, second in shapes)
        self.merge = conv(out_channels, out_channels, 1, bias=False)
        self.merge_bn = batch_norm(norm, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_bn_relu(sum(branch(x) for branch in self.branches), self.merge, self.merge_bn)


class LightAsdVisualEncoder(nn.Module):
    """``(B, 1, T, 112, 112)`` -> maps ``(B, 128, T, 14, 14)``: block (1→32, stride 2), max-pool, block (32→64),
    max-pool, block (64→128)."""

    temporal_radius = 6  # three blocks whose temporal kernels reach 2 frames either side
    out_channels = CHANNELS

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(MultiScaleBlock(True, 1, 32, down=True), FrameMaxPool(3, 2, 1),
                                    MultiScaleBlock(True, 32, 64), FrameMaxPool(3, 2, 1),
                                    MultiScaleBlock(True, 64, CHANNELS))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.layers(faces)


class LightAsdAudioEncoder(nn.Module):
    """MFCC ``(B, 13, 4·T)`` -> ``(B, T, 128)``: the coefficients as a (13, 4·T) image, three blocks with a max-pool
    over time (kernel 3, stride 2) after the first two, then the mean over the coefficients."""

    temporal_radius = 5  # video frames an output reads either side: 17 coefficient frames (kernels 5, pools 3/2)

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(MultiScaleBlock(False, 1, 32), nn.MaxPool2d((1, 3), (1, 2), (0, 1)),
                                    MultiScaleBlock(False, 32, 64), nn.MaxPool2d((1, 3), (1, 2), (0, 1)),
                                    MultiScaleBlock(False, 64, CHANNELS))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.layers(mfcc.unsqueeze(1)).mean(dim=2).transpose(1, 2)


class TwoWayGru(nn.Module):
    """Light-ASD's back end: a forward GRU, GELU, a second GRU run over the reversed sequence, GELU."""

    def __init__(self, dim: int = CHANNELS):
        super().__init__()
        self.forward_gru = nn.GRU(dim, dim, batch_first=True)
        self.backward_gru = nn.GRU(dim, dim, batch_first=True)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gelu(self.forward_gru(x)[0])
        return self.gelu(self.backward_gru(x.flip(1))[0].flip(1))


class TwoClassModel(TwoStreamModel):
    """What Light-ASD and LR-ASD share after the explained layer: the optional SE block on the visual maps
    ``(B, 128, T, 14, 14)``, the spatial max, the audio encoder on THE front end's MFCC, a fusion + back end
    (``fuse``, each model's own), and two-class heads. Those become asd-se's logits as ``class 1 − class 0`` (so
    the sigmoid is the original's softmax probability); the class-1 logit, the score the authors report, is kept
    in ``ASDOutput.scores``. The audio-only head is asd-se's (neither trains one): imports leave it untrained."""

    face_mean, face_std = FACE_MEAN, FACE_STD

    def fuse(self, sound: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Audio and visual embeddings ``(B, T, 128)`` each -> the fused sequence ``(B, T, 128)``."""
        raise NotImplementedError

    def decide_pooled(self, pooled: torch.Tensor, sound: torch.Tensor, explain: bool = False) -> ASDOutput:
        """Spatial means and maxima ``(B, 128, T, 2)`` + audio embedding ``(B, T, 128)`` -> ASDOutput: the SE
        vector from the means scales the maxima (the spatial max of the scaled maps)."""
        se_weights = self.se.weigh(pooled[..., 0]) if self.se is not None else None
        maxima = pooled[..., 1] if se_weights is None else self.se.scale(pooled[..., 1], se_weights)
        visual = maxima.transpose(1, 2)  # (B, T, 128)
        speaking, seen = self.head(self.fuse(sound, visual)), self.visual_head(visual)  # (B, T, 2) each
        return ASDOutput(speaking[..., 1] - speaking[..., 0], self.audio_head(sound).squeeze(-1),
                         seen[..., 1] - seen[..., 0], se_weights=se_weights if explain else None,
                         scores=speaking[..., 1])


class LightAsdModel(TwoClassModel):
    """Light-ASD with an optional SE block on its last visual maps; audio and visual embeddings added, then two
    GRUs (``TwoWayGru``)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.frontend = MfccFrontEnd(config.frontend)
        self.visual = LightAsdVisualEncoder()
        self.se = SEBlock(CHANNELS, config.se_reduction, config.se_squeeze, config.se_identity) if config.se else None
        self.audio = LightAsdAudioEncoder()
        self.backend = TwoWayGru()
        self.head = nn.Linear(CHANNELS, 2)
        self.visual_head = nn.Linear(CHANNELS, 2)
        self.audio_head = nn.Linear(CHANNELS, 1)

    def fuse(self, sound: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self.backend(sound + visual)
