"""One contract for every explainer, after pytorch-grad-cam's ``BaseCAM`` and Captum's single signature.

An explainer is called as ``explainer(model, maps, audio, output)`` with the activations of the explained
layer — the visual encoder's last maps, the layer the SE block sits on — the clip's audio, and the output of
the forward pass that decided from those maps. A method supplies channel weights ``(T, C)``
(``channel_weights``); the base weights the activations, applies ReLU and scales each map to [0, 1], once for
every method, so maps are comparable. Eigen-CAM, which has no channel weights, overrides ``cam`` instead.
Timing lives with the caller (the scoring engine), not here.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from asd_se.core.errors import ExplainerUnavailable
from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.explain.maps import channel_sum, normalise
from asd_se.models import AsdModel, ASDOutput

GRADIENT_BUDGET = 2**26  # floats of batched gradients held at once (256 MB)
GRADIENT_PIECE = 100  # frames (4 s) whose decision a gradient method differentiates at once: each frame's
# gradient flows back through the whole sequence, so the cost grows with the square of the length (Light-ASD,
# 900 frames at once: 118 ms/frame; in 100-frame pieces: about a tenth of that)


def frame_gradients(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """``(T, C, h, w)``: the gradient of each frame's logit ``logits (T,)`` with respect to that frame's own
    maps, where ``maps (1, C, T, h, w)`` is the leaf the logits were computed from. Batched over target frames
    (``is_grads_batched``), in chunks that keep the gradients within ``GRADIENT_BUDGET``."""
    frames = logits.shape[0]
    chunk = max(1, min(frames, GRADIENT_BUDGET // maps[0].numel()))
    targets = torch.eye(frames, device=logits.device, dtype=logits.dtype)
    parts = []
    for start in range(0, frames, chunk):
        stop = min(frames, start + chunk)
        grads = torch.autograd.grad(logits, maps, grad_outputs=targets[start:stop], retain_graph=stop < frames,
                                    is_grads_batched=True)[0]  # (n, 1, C, T, h, w)
        index = torch.arange(start, stop, device=logits.device)
        parts.append(grads[index - start, 0, :, index])  # (n, C, h, w): own frame only
    return torch.cat(parts)


def decision_gradients(model: AsdModel, maps: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """``(T, C, h, w)`` per-frame gradients of the speaking logits with respect to ``maps (1, C, T, h, w)``, with
    ``audio (1, before + 640·T + after)`` (``model.audio_context``): the decision of each ``GRADIENT_PIECE``
    frames is differentiated on its own."""
    frames, extra, parts = maps.shape[2], sum(model.audio_context), []
    # cuDNN's RNN has no backward in eval mode: gradients through the GRU take PyTorch's own kernels
    with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
        for start in range(0, frames, GRADIENT_PIECE):
            stop = min(frames, start + GRADIENT_PIECE)
            leaf = maps[:, :, start:stop].detach().requires_grad_()
            sound = audio[:, start * SAMPLES_PER_FRAME:stop * SAMPLES_PER_FRAME + extra]
            parts.append(frame_gradients(model.decide(leaf, sound).logits[0], leaf))
    return torch.cat(parts)


class Explainer:
    """Maps ``(T, h, w)`` in [0, 1] at the explained layer's resolution for a clip of T frames."""

    name: ClassVar[str] = ""
    needs_gradients: ClassVar[bool] = False

    def __call__(self, model: AsdModel, maps: torch.Tensor, audio: torch.Tensor, output: ASDOutput
                 ) -> torch.Tensor:
        """``maps (1, C, T, h, w)``, ``audio (1, before + 640·T + after)`` (``model.audio_context``) and the
        ``output`` decided from them -> ``(T, h, w)``."""
        if self.needs_gradients and not hasattr(model, "decide"):
            raise ExplainerUnavailable(f"{self.name} needs gradients of the model's decision: a torch model "
                                       f"(an ONNX runtime gives none)")
        gradients = decision_gradients(model, maps, audio).float() if self.needs_gradients else None
        with torch.no_grad():
            activations = maps[0].detach().transpose(0, 1).float()  # (T, C, h, w)
            return normalise(self.cam(activations, gradients, output))

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None, output: ASDOutput) -> torch.Tensor:
        """Unnormalised maps ``(T, h, w)``: the activations ``(T, C, h, w)`` weighted per channel."""
        return channel_sum(activations, self.channel_weights(activations, gradients, output))

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, output: ASDOutput
                        ) -> torch.Tensor:
        """``(T, C)`` the weight of each channel in each frame's map."""
        raise NotImplementedError

    def channels(self, output: ASDOutput) -> list[list[int]] | None:
        """Per frame, the channels the map is made of, most important first (where a method selects some)."""
        return None
