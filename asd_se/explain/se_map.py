"""SE heatmaps (Roxo et al., "How to Squeeze An Explanation Out of Your Model", arXiv 2412.05134).

The SE vector ranks the channels of the visual encoder's last maps; the maps of the channels it rates highest
(SE value above mean + 1.282·std, the top ~10% of a normal distribution; or exactly the top fraction by rank)
are averaged (the explainer base then applies ReLU and scales to [0, 1]) and upsampled onto the face crop. It reuses the
forward pass that made the decision: no gradients, no second pass.

Trained SE vectors are left-skewed, not normal, so the threshold alone can pick very few channels (0-19 of 192
per clip here) and the map then follows one or two of them (on the hair, say). By default it is topped up to at
least 5% of the channels by rank (``floor``; README, "Explanations": pointing game 0.74 -> 0.83, deletion AUC
0.098 -> 0.045); ``floor=0`` is the paper's rule alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from asd_se.core.errors import ExplainerUnavailable
from asd_se.core.options import FRACTION, Range, check_settings, setting
from asd_se.explain.base import Explainer
from asd_se.explain.eigencam import principal_map
from asd_se.models import ASDOutput

Z_TOP_10 = 1.282  # standard-normal quantile of 0.9
SELECTION_MODES = ("threshold", "rank")


@dataclass(frozen=True)
class ChannelSelection:
    """Which channels make an SE map. ``threshold``: SE value above mean + 1.282·std (the paper's rule), and
    at least the ``floor`` fraction of channels by rank where the threshold picks fewer (0: the rule alone, at
    least one channel). ``rank``: exactly the ``top`` fraction by rank. Ties at the cut are all kept."""

    mode: str = setting("threshold", "SE channels: above mean + 1.282 std (the paper's top ~10%), or exactly "
                                     "the top fraction by rank", SELECTION_MODES, flag="select")
    top: float = setting(0.1, "fraction of channels for --se-select rank", range=Range(0, 1, open_low=True))
    floor: float = setting(0.05, "with threshold: at least this fraction of channels, by rank, where the "
                                 "threshold picks fewer (0: the paper's rule alone, which can follow 1-2 channels)",
                           range=FRACTION)

    def __post_init__(self):
        check_settings(self, "SE ")


def _top_fraction(se_weights: torch.Tensor, fraction: float) -> torch.Tensor:
    count = max(1, int(round(fraction * se_weights.shape[-1])))
    return se_weights >= se_weights.topk(count, dim=-1).values[..., -1:]


def paper_threshold(se_weights: torch.Tensor) -> torch.Tensor:
    """``(..., 1)`` the paper's cut for SE vectors ``(..., C)``: mean + 1.282·std (population std)."""
    return se_weights.mean(dim=-1, keepdim=True) + Z_TOP_10 * se_weights.std(dim=-1, keepdim=True, unbiased=False)


def select_channels(se_weights: torch.Tensor, selection: ChannelSelection = ChannelSelection()) -> torch.Tensor:
    """Boolean mask ``(..., C)`` of the channels an SE vector ``(..., C)`` rates highest (see ChannelSelection)."""
    if selection.mode == "rank":
        return _top_fraction(se_weights, selection.top)
    mask = se_weights > paper_threshold(se_weights)
    floor = _top_fraction(se_weights, selection.floor) if selection.floor > 0 else \
        F.one_hot(se_weights.argmax(dim=-1), se_weights.shape[-1]).bool()
    return torch.where(mask.sum(dim=-1, keepdim=True) >= floor.sum(dim=-1, keepdim=True), mask, floor)


def selection_weights(se_weights: torch.Tensor, selection: ChannelSelection = ChannelSelection()) -> torch.Tensor:
    """``(..., C)``: the channels each SE vector ``(..., C)`` selects, each weighted 1 / (number selected), the
    others 0 — the weights that make an SE map the mean of its selected channels (``maps.channel_sum``)."""
    mask = select_channels(se_weights.float(), selection).float()
    return mask / mask.sum(dim=-1, keepdim=True)


def se_channel_weights(se_weights: torch.Tensor, frames: int,
                       selection: ChannelSelection = ChannelSelection()) -> torch.Tensor:
    """``(T, C)``: ``selection_weights`` of an SE vector ``(C,)`` (clip squeeze, shared by all ``frames``) or
    ``(T, C)`` (frame squeeze)."""
    weights = selection_weights(se_weights, selection)
    return weights.expand(frames, -1) if weights.dim() == 1 else weights


def ranked_channels(se_weights: torch.Tensor, selection: ChannelSelection = ChannelSelection()) -> list[list[int]]:
    """``(..., C)`` SE vectors -> for each, its selected channel indices by decreasing SE value."""
    flat = se_weights.reshape(-1, se_weights.shape[-1]).float().cpu()
    chosen = select_channels(flat, selection)
    order = flat.argsort(dim=1, descending=True)
    return [row_order[row_mask[row_order]].tolist() for row_order, row_mask in zip(order, chosen)]


def contrast_map(activations: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``activations (N, C, *S)``, selection ``weights (N, C)`` (non-zero where selected) -> ``(N, *S)``: the
    first principal component of the selected channels after the mean over all C channels is taken from every
    position (``SeContrastExplainer``)."""
    chosen = (weights > 0).to(activations.dtype).reshape(*weights.shape, *([1] * (activations.dim() - 2)))
    return principal_map((activations - activations.mean(dim=1, keepdim=True)) * chosen)


class SeExplainer(Explainer):
    """The SE map: the decision's own SE vector picks the channels, from the same forward pass; no gradients."""

    name = "se"

    def __init__(self, selection: ChannelSelection = ChannelSelection()):
        self.selection = selection

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None, output: ASDOutput
                        ) -> torch.Tensor:
        if output.se_weights is None:
            raise ExplainerUnavailable("this model has no SE block (model.se=false): SE maps need one")
        return se_channel_weights(output.se_weights[0], activations.shape[0], self.selection)

    def channels(self, output: ASDOutput) -> list[list[int]]:
        """Per frame (a clip-squeeze SE vector is shared by every frame)."""
        ranked = ranked_channels(output.se_weights[0], self.selection)
        return ranked * output.logits.shape[1] if len(ranked) == 1 else ranked


class SeContrastExplainer(SeExplainer):
    """Beyond the paper: the principal component of what the SE-selected channels show beyond what every channel
    shows. At each pixel the mean over all C channels — the structure any filter bank finds in a face, a random
    one included — is subtracted; the map is the first principal component (Eigen-CAM's projection) of the
    selected channels of that remainder. The SE vector still picks the channels; one forward pass, no gradients.
    Designed from explain-eval's measurements: Eigen-CAM's component of all channels, and even of the channels
    the SE block does not select, points at the mouth as well as Eigen-CAM but stays when the weights are random;
    with the shared part removed, the map follows the model."""

    name = "se_contrast"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor | None, output: ASDOutput) -> torch.Tensor:
        return contrast_map(activations, self.channel_weights(activations, gradients, output))
