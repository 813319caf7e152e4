"""Audio-visual fusion and the temporal backend, both over per-frame embeddings ``(B, T, D)``."""

from __future__ import annotations

import torch
from torch import nn


class SumFusion(nn.Module):
    """Light-ASD style: the two streams added."""

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return audio + visual


class CrossAttentionFusion(nn.Module):
    """TalkNet style: each stream attends to the other; the two results are joined by a linear layer."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.audio_to_visual = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.visual_to_audio = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.join = nn.Linear(2 * dim, dim)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        attended_audio, _ = self.audio_to_visual(audio, visual, visual)
        attended_visual, _ = self.visual_to_audio(visual, audio, audio)
        return self.join(torch.cat([audio + attended_audio, visual + attended_visual], dim=-1))


class GruBackend(nn.Module):
    """A bidirectional GRU; output keeps the width ``dim``."""

    def __init__(self, dim: int):
        super().__init__()
        self.gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class AttentionBackend(nn.Module):
    """Two self-attention layers with learned-free sinusoidal positions."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 2, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[:, None]
        rates = torch.exp(torch.arange(0, self.dim, 2, device=x.device, dtype=x.dtype) * (-9.2 / self.dim))
        encoding = torch.cat([torch.sin(positions * rates), torch.cos(positions * rates)], dim=-1)
        return self.encoder(x + encoding)


def build_fusion(kind: str, dim: int) -> nn.Module:
    """``kind``: one of ``config.FUSIONS`` (checked when the config is made)."""
    return SumFusion() if kind == "sum" else CrossAttentionFusion(dim)


def build_backend(kind: str, dim: int) -> nn.Module:
    """``kind``: one of ``config.BACKENDS`` (checked when the config is made)."""
    return {"gru": GruBackend, "attention": AttentionBackend}[kind](dim)
