"""The two-stream active speaker model: faces + waveform -> per-frame speaking logits (+ SE maps on request)."""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.audio_encoder import AudioEncoder
from asd_se.models.config import ModelConfig
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.fusion import build_backend, build_fusion
from asd_se.models.output import ASDOutput
from asd_se.models.se import SEBlock
from asd_se.models.visual import TwoStreamModel, build_visual_encoder

# Grey-level statistics of face crops, for input normalisation.
FACE_MEAN, FACE_STD = 0.45, 0.22


class ActiveSpeakerModel(TwoStreamModel):
    """faces ``(B, T, 112, 112)`` uint8 or float in [0, 255], audio ``(B, 640·T)`` 16 kHz -> ASDOutput."""

    face_mean, face_std = FACE_MEAN, FACE_STD

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.frontend = MfccFrontEnd(config.frontend)
        self.visual = build_visual_encoder(config.variant, config.map_size)
        channels = self.visual.out_channels
        self.se = SEBlock(channels, config.se_reduction, config.se_squeeze, config.se_identity) if config.se else None
        self.visual_proj = nn.Sequential(nn.Linear(channels, dim), nn.ReLU(inplace=True))
        self.audio = AudioEncoder(dim)
        self.fusion = build_fusion(config.fusion, dim)
        self.backend = build_backend(config.backend, dim)
        self.head = nn.Linear(dim, 1)
        self.audio_head = nn.Linear(dim, 1)
        self.visual_head = nn.Linear(dim, 1)

    def decide_pooled(self, pooled: torch.Tensor, sound: torch.Tensor, explain: bool = False) -> ASDOutput:
        """Spatial means and maxima ``(B, C, T, 2)`` + audio embedding ``(B, T, D)`` -> ASDOutput (this model reads
        the means: its visual embedding is the spatial mean of the SE-scaled maps)."""
        means = pooled[..., 0]
        se_weights = self.se.weigh(means) if self.se is not None else None
        scaled = means if se_weights is None else self.se.scale(means, se_weights)
        visual = self.visual_proj(scaled.transpose(1, 2))  # (B, T, D)
        fused = self.backend(self.fusion(sound, visual))
        return ASDOutput(self.head(fused).squeeze(-1), self.audio_head(sound).squeeze(-1),
                         self.visual_head(visual).squeeze(-1), se_weights=se_weights if explain else None)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
