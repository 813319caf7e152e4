"""What every asd-se model returns (``ASDOutput``) and exposes (``AsdModel``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class ASDOutput:
    """Per-frame logits ``(B, T)`` of the AV head and the two auxiliary heads (sigmoid: speaking probability).

    With ``explain=True``: ``feature_maps`` ``(B, T, C, h, w)`` — the visual encoder's last maps, as the SE block
    saw them — and ``se_weights`` ``(B, C)`` (clip squeeze) or ``(B, T, C)`` (frame squeeze), from the same pass.
    ``scores`` ``(B, T)``: the per-frame score a model's authors report where it is not ``logits`` (Light-ASD's
    class-1 logit); None otherwise.
    """

    logits: torch.Tensor
    audio_logits: torch.Tensor
    visual_logits: torch.Tensor
    feature_maps: torch.Tensor | None = None
    se_weights: torch.Tensor | None = None
    scores: torch.Tensor | None = None

    def frames(self, span: slice) -> "ASDOutput":
        """The same output for frames ``span`` of its clips (a clip-squeeze SE vector is every frame's)."""
        def cut(value: torch.Tensor | None, per_frame: bool = True) -> torch.Tensor | None:
            return value[:, span] if value is not None and per_frame else value

        se_per_frame = self.se_weights is not None and self.se_weights.dim() == 3
        return ASDOutput(cut(self.logits), cut(self.audio_logits), cut(self.visual_logits), cut(self.feature_maps),
                         cut(self.se_weights, se_per_frame), cut(self.scores))


class AsdModel(Protocol):
    """What every asd-se model exposes (``ActiveSpeakerModel``, ``LightAsdModel``), and what explainers and the
    scoring engine rely on: the explained layer (the visual encoder's last maps, where the SE block sits) and
    the decision from it."""

    se: torch.nn.Module | None  # the SE block, where the model has one
    audio_context: tuple[int, int]  # samples before / after 640·T the audio front end reads for T frames

    def visual_maps(self, faces: torch.Tensor) -> torch.Tensor:
        """Faces ``(B, T, H, W)`` -> activations ``(B, C, T, h, w)`` of the explained layer."""

    def decide(self, maps: torch.Tensor, audio: torch.Tensor, explain: bool = False) -> ASDOutput:
        """Activations ``(B, C, T, h, w)`` + audio ``(B, 640·T)`` (or with ``audio_context``) -> the decision."""

    def __call__(self, faces: torch.Tensor, audio: torch.Tensor, explain: bool = False) -> ASDOutput:
        """``decide(visual_maps(faces), audio, explain)``."""
