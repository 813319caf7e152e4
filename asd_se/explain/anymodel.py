"""Squeeze an explanation out of any PyTorch model: the paper's model-agnostic half (Roxo et al., arXiv 2412.05134).

``insert_se`` puts an SE block on the maps entering (``before=``) or leaving (``after=``) a named module of any
``nn.Module`` — ``before="avgpool"`` on a torchvision ResNet or Inception, ``after="features"`` on a MobileNet —
with the identity start (every channel scaled by exactly 1), so a trained model computes what it computed until
it trains again. ``SqueezeExplainer`` then runs the model once on a batch and returns its output with each item's
SE map: the SE vector selects channels (the paper's mean + 1.282·std, the floor and the rank option:
``ChannelSelection``), their maps are averaged, ReLU'd, scaled to [0, 1] and upsampled to the input: one forward
pass, no gradients. ``contrast=True`` gives asd-se's ``se_contrast`` map instead (the selected channels' principal
component once the mean over all channels is taken out: it follows the weights where the plain mean follows the
image). ``head=`` (the ``nn.Linear`` that reads the pooled SE output) gives the class-weighted SE map instead: each
selected channel weighted by its SE value times the target class's weight in that head (CAM's weights, Zhou et al.
2016, on the SE selection; still one forward pass, no gradients), for the predicted class or ``targets=``. The ASD
models' SE maps (``se_map.SeExplainer``, ``SeContrastExplainer``) are made by the same functions.

    se = insert_se(model, before="avgpool", example=images[:1])   # then train, or fine-tune, the model
    model.eval()
    explained = SqueezeExplainer(model, se)(images)                # .output, .maps (B, H, W), .channels
    by_class = SqueezeExplainer(model, se, head=model.fc)(images, targets=labels)   # the class-weighted map

``SeGates`` gives training the sparsity term asd-se's ASD models train with (``train.se_sparsity``): λ × the mean
SE value added to the loss, so a gate stays open only where its channel pays for itself and the SE vector ranks
channels by use (network slimming's L1 on channel scales, applied to the SE gates):

    with SeGates(se) as gates:
        loss = criterion(model(images), labels) + 0.1 * gates.mean()
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from asd_se.core.errors import ModelError
from asd_se.explain.maps import channel_sum, normalise, upsample
from asd_se.explain.se_map import (ChannelSelection, contrast_map, ranked_channels, select_channels,
                                   selection_weights)
from asd_se.models.se import SEBlock

POSITIONS = ("before", "after")


@dataclass(frozen=True)
class Explanation:
    """One batch explained. ``output``: what the model returned; ``maps (B, *S)`` in [0, 1] at input resolution
    (``(B, H, W)`` for 2-D maps, ``(B, T, H, W)`` for 3-D); ``se_weights (B, C)``; ``channels``: per item, the
    selected channels by decreasing SE value."""

    output: Any
    maps: torch.Tensor
    se_weights: torch.Tensor
    channels: list[list[int]]


def _spatial(x: Any, layer: str, position: str) -> torch.Tensor:
    """``x`` where it is a tensor of maps ``(B, C, *S)``; ModelError saying why an SE block cannot sit there."""
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        where = "entering" if position == "before" else "leaving"
        raise ModelError(f"the tensor {where} layer {layer!r} is {shape}: no spatial maps to squeeze; an SE block "
                         "needs (B, C, H, W) or (B, C, T, H, W) maps, e.g. before the global pooling")
    return x


class Squeezed(nn.Module):
    """What ``insert_se`` puts in a layer's place: the layer (``.layer``) with an SE block (``.se``) on the maps
    entering it (``before``) or leaving it (``after``). A wrapper, never a new child beside the layer: a child
    of an ``nn.Sequential`` would also run at the Sequential's end. The layer's own attributes read through it
    (``model.features[2].conv``), and its state-dict keys stay those of the layer, so weights saved without the
    block load into the model with it (only the block's ``se.*`` keys are new)."""

    def __init__(self, layer: nn.Module, se: SEBlock, position: str, name: str):
        super().__init__()
        self.layer, self.se, self.position, self.layer_name = layer, se, position, name
        self.register_state_dict_post_hook(_layer_keys_saved_as_its_own)
        self.register_load_state_dict_pre_hook(_layer_keys_loaded_into_it)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.position == "before":
            args = (self.se(_spatial(args[0] if args else None, self.layer_name, self.position))[0], *args[1:])
            return self.layer(*args, **kwargs)
        return self.se(_spatial(self.layer(*args, **kwargs), self.layer_name, self.position))[0]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            layer = self.__dict__.get("_modules", {}).get("layer")  # absent while unpickling
            if layer is None:
                raise
            return getattr(layer, name)


def _layer_keys_saved_as_its_own(module: Squeezed, state: dict, prefix: str, metadata: dict) -> None:
    """``PREFIX.layer.K`` -> ``PREFIX.K`` in a state dict being made (in place, order kept)."""
    inner = prefix + "layer."
    for key in [key for key in state if key.startswith(prefix)]:
        value = state.pop(key)
        state[prefix + key[len(inner):] if key.startswith(inner) else key] = value


def _layer_keys_loaded_into_it(module: Squeezed, state: dict, prefix: str, *_) -> None:
    """``PREFIX.K`` -> ``PREFIX.layer.K`` in a state dict being loaded, for every K but the block's own."""
    for key in [key for key in state if key.startswith(prefix) and not key.startswith(prefix + "se.")]:
        state[prefix + "layer." + key[len(prefix):]] = state.pop(key)


def _channels(model: nn.Module, layer: str, position: str, example: tuple) -> tuple[int, torch.Tensor]:
    """The channel count of the maps at ``layer`` and one of them, from one forward pass of ``example`` in eval
    mode without gradients (running statistics are not touched), every module's own mode restored after."""
    seen: list[torch.Tensor] = []

    def record(module: nn.Module, args: tuple, output: Any = None) -> None:
        seen.append(_spatial(args[0] if args else None, layer, position) if position == "before"
                    else _spatial(output, layer, position))

    target = model.get_submodule(layer)
    handle = (target.register_forward_pre_hook(record) if position == "before"
              else target.register_forward_hook(record))
    modes = {module: module.training for module in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*example)
    finally:
        handle.remove()
        for module, training in modes.items():
            module.training = training
    if not seen:
        raise ModelError(f"layer {layer!r} is never called in the model's forward pass: no maps to squeeze")
    return seen[0].shape[1], seen[0]


def insert_se(model: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], *, before: str | None = None,
              after: str | None = None, reduction: int = 16) -> SEBlock:
    """Insert an SE block (identity start, clip squeeze, ``reduction``) on the maps entering ``before`` or leaving
    ``after`` — a name from ``model.named_modules()`` — and return it. ``example``: an input (or a tuple of the
    model's inputs) run once to learn the channel count. The named layer is replaced in its parent by a
    ``Squeezed`` wrapper holding it and the block (so the block trains, saves, loads and pickles with the model;
    the layer's parameters keep their state-dict keys), and the model's outputs are unchanged until it trains."""
    if (before is None) == (after is None):
        raise ModelError("insert_se needs exactly one of before= or after= (a layer name)")
    position, layer = ("before", before) if before is not None else ("after", after)
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        close = difflib.get_close_matches(layer, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; it has {', '.join(names[:8])}, ..."
        raise ModelError(f"the model has no layer {layer!r}{hint}")
    target = wrapped = model.get_submodule(layer)
    while isinstance(wrapped, Squeezed):  # a block on the other side may be there already
        if wrapped.position == position:
            raise ModelError(f"an SE block is already inserted {position} {layer!r}")
        wrapped = wrapped.layer
    channels, maps = _channels(model, layer, position, example if isinstance(example, tuple) else (example,))
    se = SEBlock(channels, reduction, squeeze="clip", identity_start=True).to(maps.device)
    parent_name, _, leaf = layer.rpartition(".")
    model.get_submodule(parent_name).register_module(leaf, Squeezed(target, se, position, layer))
    return se


class SeGates:
    """The SE vectors ``(B, C)`` of every forward pass of ``se`` inside a ``with`` block, kept with their graph
    so that a term made of them trains the block; ``mean()`` is the sparsity term (0 before any pass)."""

    def __init__(self, se: SEBlock):
        if not isinstance(se, SEBlock):
            raise ModelError(f"SeGates needs the SE block insert_se returned, not a {type(se).__name__}")
        self.se, self.gates, self._handle = se, [], None

    def __enter__(self) -> SeGates:
        self.gates.clear()
        self._handle = self.se.register_forward_hook(lambda module, args, out: self.gates.append(out[1]))
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()

    def mean(self) -> torch.Tensor:
        """The mean SE value over every item and channel of the passes so far: a scalar with a gradient."""
        if not self.gates:
            return torch.zeros(())
        return torch.cat([gates.float().flatten() for gates in self.gates]).mean()


def class_weights(se_weights: torch.Tensor, selection: ChannelSelection, head: nn.Linear,
                  targets: torch.Tensor) -> torch.Tensor:
    """``(B, C)``: the channels each SE vector ``(B, C)`` selects, each weighted by its SE value times the weight of
    the item's target class (``targets (B,)``) in ``head`` (``(K, C)`` weights reading the pooled SE output); the
    other channels 0. Summed over the maps entering the block, this is the target logit's share at each position
    (CAM), kept to the channels the SE vector ranks highest."""
    chosen = select_channels(se_weights.float(), selection).float()
    return chosen * se_weights.float() * head.weight.detach().float()[targets]


def _require_finite(output: Any, maps: torch.Tensor) -> None:
    """ModelError naming the batch items whose output or SE-block maps ``(B, C, *S)`` hold NaN or infinite values:
    their map would look finite and confident (ReLU and scaling hide a NaN) while explaining nothing."""
    tensors = [output] if isinstance(output, torch.Tensor) else (
        list(output.values()) if isinstance(output, dict) else list(output) if isinstance(output, (tuple, list))
        else [])
    broken = ~torch.isfinite(maps.flatten(1)).all(dim=1)
    for tensor in tensors:
        if isinstance(tensor, torch.Tensor) and tensor.dim() and len(tensor) == len(broken):
            broken |= ~torch.isfinite(tensor.reshape(len(tensor), -1)).all(dim=1)
    if broken.any():
        items = broken.nonzero().flatten().tolist()
        raise ModelError(f"batch item(s) {', '.join(map(str, items[:8]))}{', ...' if len(items) > 8 else ''}: the "
                         "model's output or the maps the SE block weighs hold NaN or infinite values (check the "
                         "input); no map is made for a non-finite decision")


class SqueezeExplainer:
    """The SE map of every item of a batch, from the one forward pass that gives the model's output: the mean of
    the selected channels (the paper's map); with ``contrast``, their principal component beyond the mean of all
    channels (``se_contrast``); with ``head``, their sum weighted for a class (``class_weights``)."""

    def __init__(self, model: nn.Module, se: SEBlock, selection: ChannelSelection = ChannelSelection(),
                 contrast: bool = False, head: nn.Linear | None = None):
        if not any(module is se for module in model.modules()):
            raise ModelError("this SE block is not part of the model: insert it with insert_se(model, ...)")
        if head is not None:
            if contrast:
                raise ModelError("contrast=True and head= are two different maps: choose one")
            if not isinstance(head, nn.Linear) or not any(module is head for module in model.modules()):
                raise ModelError("head= must be the model's own nn.Linear that reads the pooled SE output (e.g. "
                                 f"model.fc), not a {type(head).__name__}")
        self.model, self.se, self.selection, self.contrast, self.head = model, se, selection, contrast, head

    def __call__(self, *inputs: torch.Tensor, size: tuple[int, ...] | None = None,
                 targets: torch.Tensor | None = None) -> Explanation:
        """``inputs``: the model's inputs (a batch). ``size``: the maps' output size; by default the trailing
        dimensions of the first input (``(H, W)`` of ``(B, 3, H, W)`` images for 2-D maps). ``targets (B,)``: the
        classes the ``head`` map explains (default: each item's highest output)."""
        if self.model.training:
            raise ModelError("the model is in training mode: call model.eval() first (batch statistics and "
                             "dropout would change the map, and running statistics would move)")
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []
        handle = self.se.register_forward_hook(lambda module, args, out: seen.append((args[0], out[1])))
        try:
            with torch.no_grad():
                output = self.model(*inputs)
        finally:
            handle.remove()
        if len(seen) != 1:
            raise ModelError(f"the SE block ran {len(seen)} times in one forward pass; an SE map needs exactly one")
        maps, weights = seen[0]
        _require_finite(output, maps)
        spatial = maps.dim() - 2
        size = tuple(inputs[0].shape[-spatial:]) if size is None else tuple(size)
        if self.head is None:
            chosen = selection_weights(weights, self.selection)
        else:
            chosen = class_weights(weights, self.selection, self.head, self._targets(output, targets, maps.shape))
        heat = normalise(contrast_map(maps.float(), chosen) if self.contrast else channel_sum(maps.float(), chosen))
        return Explanation(output, upsample(heat, size), weights, ranked_channels(weights, self.selection))

    def _targets(self, output: Any, targets: torch.Tensor | None, maps: torch.Size) -> torch.Tensor:
        """``(B,)`` the class each item's ``head`` map explains, checked against the head and the maps."""
        if self.head.in_features != maps[1]:
            raise ModelError(f"head= reads {self.head.in_features} features but the SE block weighs {maps[1]} "
                             "channels: pass the linear layer that reads the pooled SE output")
        if targets is None:
            if not isinstance(output, torch.Tensor) or output.dim() != 2:
                raise ModelError("the model's output is not (B, classes) scores: pass targets= (B,) class indices")
            targets = output.argmax(dim=1)
        targets = torch.as_tensor(targets, device=self.head.weight.device).long().reshape(-1)
        if len(targets) != maps[0] or not bool(((targets >= 0) & (targets < self.head.out_features)).all()):
            raise ModelError(f"targets= needs {maps[0]} class indices in [0, {self.head.out_features}), one per "
                             f"item, not {targets.tolist()}")
        return targets
