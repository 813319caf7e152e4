"""Visual encoders: grayscale face clips ``(B, 1, T, 112, 112)`` -> feature maps ``(B, C, T, h, w)`` (7×7 by
default)."""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.output import ASDOutput


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm3d(channels), nn.ReLU(inplace=True)]


class SplitConvBlock(nn.Module):
    """A (1×3×3) spatial then (3×1×1) temporal convolution (Light-ASD style), with a residual path."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.spatial = nn.Sequential(nn.Conv3d(in_channels, out_channels, (1, 3, 3), (1, stride, stride), (0, 1, 1),
                                               bias=False), *_bn_relu(out_channels))
        self.temporal = nn.Sequential(nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0),
                                                bias=False), nn.BatchNorm3d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = self.spatial(x)
        return self.relu(spatial + self.temporal(spatial))


class LightVisualEncoder(nn.Module):
    """~0.5M parameters; 112 -> 56 (stem) -> 28 (pool) -> 14 -> 7 -> 7, so heatmaps are 7×7 before upsampling;
    with ``map_size=14`` the second block keeps its resolution (-> 14 -> 14 -> 14): finer maps, and the last two
    blocks cost 4× as much."""

    temporal_radius = 3  # three (3×1×1) convolutions: an output frame sees 3 input frames either side

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 192), map_size: int = 7):
        super().__init__()
        self.out_channels = widths[-1]
        self.stem = nn.Sequential(nn.Conv3d(1, widths[0], (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
                                  *_bn_relu(widths[0]), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        self.blocks = nn.Sequential(SplitConvBlock(widths[0], widths[1], 2),
                                    SplitConvBlock(widths[1], widths[2], 2 if map_size == 7 else 1),
                                    SplitConvBlock(widths[2], widths[3], 1))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(faces))


class BasicBlock(nn.Module):
    """ResNet basic block on 2D maps ``(N, C, h, w)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels))
        self.shortcut = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet18VisualEncoder(nn.Module):
    """TalkNet/BIAS class: a 3D stem (5×7×7) then ResNet-18 per frame. layer4 keeps stride 1 so maps stay 7×7."""

    temporal_radius = 2  # the (5×7×7) stem; the trunk is per frame

    def __init__(self) -> None:
        super().__init__()
        self.out_channels = 512
        self.stem = nn.Sequential(nn.Conv3d(1, 64, (5, 7, 7), (1, 2, 2), (2, 3, 3), bias=False), *_bn_relu(64),
                                  nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))
        layers, channels = [], 64
        for width, stride in ((64, 1), (128, 2), (256, 2), (512, 1)):
            layers += [BasicBlock(channels, width, stride), BasicBlock(width, width, 1)]
            channels = width
        self.trunk = nn.Sequential(*layers)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        stem = self.stem(faces)  # (B, 64, T, 28, 28)
        batch, channels, frames, height, width = stem.shape
        flat = stem.transpose(1, 2).reshape(batch * frames, channels, height, width)
        maps = self.trunk(flat)  # (B·T, 512, 7, 7)
        return maps.reshape(batch, frames, *maps.shape[1:]).transpose(1, 2)


EVAL_CHUNK = 64  # frames a visual encoder sees at once outside training (on 2 CPU cores, with channels-last weights,
# 64 ran 1.1-1.5× faster per frame than 128, halo included: the activations stay in cache)


def encode_in_chunks(encoder: nn.Module, faces: torch.Tensor, normalise, training: bool) -> torch.Tensor:
    """``encoder`` (with a ``temporal_radius``) over ``(B, T, H, W)`` faces, normalised by ``normalise``, ->
    maps ``(B, C, T, h, w)``. Outside training, long clips are encoded ``EVAL_CHUNK`` frames at a time, each chunk
    with the neighbouring frames the encoder's temporal convolutions reach, so the maps are those of one pass
    while the activations' memory stays that of one chunk."""
    frames = faces.shape[1]
    if training or frames <= EVAL_CHUNK:
        return encoder(normalise(faces).unsqueeze(1))
    halo, parts = encoder.temporal_radius, []
    for start in range(0, frames, EVAL_CHUNK):
        low, high = max(0, start - halo), min(frames, start + EVAL_CHUNK + halo)
        maps = encoder(normalise(faces[:, low:high]).unsqueeze(1))
        parts.append(maps[:, :, start - low:start - low + min(EVAL_CHUNK, frames - start)])
    return torch.cat(parts, dim=2)


def channels_last_convolutions(model: nn.Module) -> nn.Module:
    """``model`` with its 3-D convolution weights stored channels-last (same values): oneDNN's fast path, 1.3-1.4×
    faster for asd-se's visual encoders on the CPU. In place; returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return model


class TwoStreamModel(nn.Module):
    """What asd-se's models share: faces normalised by the model's grey-level statistics (``face_mean``,
    ``face_std``) into ``visual`` (chunked outside training), the audio front end's context, and ``forward`` as
    ``decide`` on the visual maps. A subclass builds ``frontend``, ``visual``, ``se`` and defines ``decide``."""

    face_mean: float
    face_std: float

    @property
    def audio_context(self) -> tuple[int, int]:
        """Samples before and after ``640·T`` the audio front end reads (``MfccFrontEnd``)."""
        return self.frontend.context

    def normalise(self, faces: torch.Tensor) -> torch.Tensor:
        """uint8 faces ``(B, T, H, W)`` -> the encoder's input ``(B, T, H, W)`` float (the model's grey statistics)."""
        return (faces.float() / 255.0 - self.face_mean) / self.face_std

    def visual_maps(self, faces: torch.Tensor) -> torch.Tensor:
        """``(B, T, H, W)`` faces -> the last visual feature maps ``(B, C, T, h, w)`` (before the SE block)."""
        return encode_in_chunks(self.visual, faces, self.normalise, self.training)

    def sound(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """Audio ``(B, 640·T)`` (or with ``audio_context``) -> the audio embedding ``(B, T, D)`` of ``frames``.
        Outside training, equal rows are encoded once (the faces of one live window hear the same sound)."""
        if self.training or audio.shape[0] == 1:
            return self.audio(self.frontend(audio, frames))[:, :frames]
        heard, rows = torch.unique(audio, dim=0, return_inverse=True)
        return self.audio(self.frontend(heard, frames))[:, :frames][rows]

    @staticmethod
    def pool(maps: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, C, T, h, w)`` -> ``(B, C, T, 2)``: each frame's spatial mean and max per channel — all the
        decision reads of the maps (the SE block squeezes the means, and scales every channel by a positive
        factor, which the mean and the max commute with), so a frozen encoder's features fit in 2·C per frame.
        Reduced with the channels innermost: the encoders' maps come channels-last, where reducing over the
        last two dimensions was 30× slower."""
        frames = maps.permute(0, 2, 3, 4, 1)  # (B, T, h, w, C)
        return torch.stack([frames.mean(dim=(2, 3)), frames.amax(dim=(2, 3))], dim=-1).transpose(1, 2)

    def decide_pooled(self, pooled: torch.Tensor, sound: torch.Tensor, explain: bool = False) -> ASDOutput:
        """``pool``'s ``(B, C, T, 2)`` + ``sound``'s ``(B, T, D)`` -> ASDOutput (without feature maps)."""
        raise NotImplementedError

    def decide(self, maps: torch.Tensor, audio: torch.Tensor, explain: bool = False,
               sound: torch.Tensor | None = None) -> ASDOutput:
        """Everything after the visual encoder: maps ``(B, C, T, h, w)`` + audio (or its embedding ``sound``
        ``(B, T, D)``, already computed) -> ASDOutput. Gradient explainers differentiate the logits with respect to
        ``maps`` through this."""
        sound = self.sound(audio, maps.shape[2]) if sound is None else sound
        output = self.decide_pooled(self.pool(maps), sound, explain)
        output.feature_maps = maps.transpose(1, 2) if explain else None
        return output

    def forward(self, faces: torch.Tensor, audio: torch.Tensor, explain: bool = False):
        return self.decide(self.visual_maps(faces), audio, explain)


def build_visual_encoder(variant: str, map_size: int = 7) -> nn.Module:
    """``variant`` and ``map_size`` as ``config.ModelConfig`` checked them."""
    return LightVisualEncoder(map_size=map_size) if variant == "light" else ResNet18VisualEncoder()
