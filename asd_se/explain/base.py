"""The shared base of every explainer: one forward pass split at the visual encoder's last maps (the layer
the SE block sits on), then a method-specific map per frame. Works on the two-input (faces, audio) model.

A subclass sets ``name`` and ``needs_gradients`` and implements ``raw_maps``; ``normalise`` (ReLU, peak to 1)
is applied for all, so every method's maps are comparable.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from asd_se.explain.maps import normalise
from asd_se.models import ActiveSpeakerModel, ASDOutput

GRADIENT_BUDGET = 2**26  # floats of batched gradients held at once (256 MB)


@dataclass
class Explanation:
    """For a clip of T frames: speaking probabilities ``probs (T,)``, maps ``(T, h, w)`` in [0, 1] at feature
    resolution, and (SE only) per frame the selected channels, highest SE value first."""

    probs: torch.Tensor
    maps: torch.Tensor
    channels: list[list[int]] | None = None
    forward_seconds: float = 0.0  # the model's forward pass
    explain_seconds: float = 0.0  # what the method adds: gradients, maps, normalisation


def frame_gradients(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``(T, C, h, w)``: the gradient of each frame's logit ``logits (T,)`` with respect to that frame's own
    maps, where ``maps (1, C, T, h, w)`` is the leaf the logits were computed from. Batched over target frames
    (``is_grads_batched``), in chunks that keep the gradients within ``GRADIENT_BUDGET``."""
    frames = logits.shape[0]
    per_target = maps[0].numel()
    chunk = max(1, min(frames, GRADIENT_BUDGET // per_target))
    targets = torch.eye(frames, device=logits.device, dtype=logits.dtype)
    parts = []
    for start in range(0, frames, chunk):
        stop = min(frames, start + chunk)
        grads = torch.autograd.grad(logits, maps, grad_outputs=targets[start:stop], retain_graph=stop < frames,
                                    is_grads_batched=True)[0]  # (n, 1, C, T, h, w)
        index = torch.arange(start, stop, device=logits.device)
        parts.append(grads[index - start, 0, :, index])  # (n, C, h, w): own frame only
    return torch.cat(parts)


def _synchronise(tensor: torch.Tensor) -> None:
    """Wait for the GPU, so the wall-clock split between forward and explanation is honest."""
    if tensor.is_cuda:
        torch.cuda.synchronize(tensor.device)


class Explainer:
    """Explain a clip: faces ``(1, T, S, S)`` uint8 + audio ``(1, 640·T)`` -> Explanation."""

    name = ""
    needs_gradients = False

    def __call__(self, model: ActiveSpeakerModel, faces: torch.Tensor, audio: torch.Tensor) -> Explanation:
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            maps = model.visual_maps(faces)
        # cuDNN's RNN has no backward in eval mode: gradients through the GRU take PyTorch's own kernels
        without_cudnn = torch.backends.cudnn.flags(enabled=False) if self.needs_gradients else nullcontext()
        with torch.set_grad_enabled(self.needs_gradients), without_cudnn:
            leaf = maps.requires_grad_() if self.needs_gradients else maps
            output = model.decide(leaf, audio, explain=True)
            probs = torch.sigmoid(output.logits[0].detach().float())
            _synchronise(probs)
            forwarded = time.perf_counter()
            gradients = frame_gradients(output.logits[0], leaf) if self.needs_gradients else None
        with torch.no_grad():
            raw = normalise(self.raw_maps(maps[0].detach().transpose(0, 1).float(), gradients, output))
            channels = self.channels(output)
            _synchronise(raw)
        return Explanation(probs, raw, channels, forwarded - started, time.perf_counter() - forwarded)

    def raw_maps(self, activations: torch.Tensor, gradients: torch.Tensor | None, output: ASDOutput
                 ) -> torch.Tensor:
        """``(T, C, h, w)`` activations (+ their per-frame gradients) -> unnormalised maps ``(T, h, w)``."""
        raise NotImplementedError

    def channels(self, output: ASDOutput) -> list[list[int]] | None:
        return None
