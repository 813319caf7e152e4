"""Convolution + BatchNorm + ReLU steps as the visual encoders use them, and how they run outside training.

The encoders factor their 3-D convolutions: over space ``(1, k, k)`` (per frame) or over time ``(k, 1, 1)``. In eval
mode a step runs as one 2-D convolution over a view of the same channels-last memory — frames as the batch
``(B·T, C, H, W)`` for space, pixels as the width ``(B, C, T, H·W)`` for time — with the BatchNorm folded into its
weights and the ReLU in place: oneDNN's 2-D kernels, and no BatchNorm or ReLU pass over the activations. The maps
are those of the modules (float rounding: ~2e-6 on LR-ASD's encoder); LR-ASD's encoder ran 1.3-1.6× faster on 2
CPU cores, Light-ASD's 1.1-1.3×. The fold reads the current parameters: a ``ConvStep`` keeps it only while no weight
changes (their storage and version counters say so), and never where gradients are recorded. In training mode a
step runs its modules as they are (BatchNorm then learns from batch statistics).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def batch_norm(kind: type[nn.Module], channels: int) -> nn.Module:
    """The BatchNorm of Light-ASD and LR-ASD: eps 0.001, momentum 0.01."""
    return kind(channels, eps=0.001, momentum=0.01)


def same_padding(kernel: tuple[int, ...]) -> tuple[int, ...]:
    """Padding that keeps the size under an odd ``kernel``."""
    return tuple(k // 2 for k in kernel)


def fold_batch_norm(conv: nn.Module, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of one convolution computing ``norm(conv(x))`` with ``norm``'s running statistics."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    bias = norm.bias - norm.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return conv.weight * scale.view(-1, *[1] * (conv.weight.dim() - 1)), bias


def _as_frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B·T, C, H, W)`` (a view of channels-last memory)."""
    return x.transpose(1, 2).flatten(0, 1)


def _from_frames(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(B·T, C', H', W')`` -> ``(B, C', T, H', W')``, ``(B, C, T, H, W)`` being the input ``x`` of the frames
    (sizes read off ``x``, so that the ONNX export keeps T dynamic)."""
    return y.reshape(x.size(0), x.size(2), *y.shape[1:]).transpose(1, 2)


def conv3d_framewise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, ...],
                     padding: tuple[int, ...]) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, stride, padding)`` for ``x`` ``(B, C, T, H, W)``, as a 2-D convolution where the
    kernel spans space only (``(1, k, k)``, stride 1 and no padding in time) or time only (``(k, 1, 1)``, stride 1
    and no padding in space); any other kernel runs as the 3-D convolution."""
    kernel = weight.shape[2:]
    if kernel[0] == 1 and stride[0] == 1 and padding[0] == 0:
        flat = weight[:, :, 0].contiguous(memory_format=torch.channels_last)
        frames = F.conv2d(_as_frames(x), flat, bias, stride[1:], padding[1:])
        # one channel in (the faces): the output came laid out channel-first, and every layer after it copied
        return _from_frames(frames.contiguous(memory_format=torch.channels_last), x)
    if kernel[1:] == (1, 1) and stride == (1, 1, 1) and padding[1:] == (0, 0):
        flat = weight[..., 0].contiguous(memory_format=torch.channels_last)  # (O, I, k, 1)
        y = F.conv2d(x.flatten(3), flat, bias, 1, (padding[0], 0))
        return y.reshape(*y.shape[:3], *x.shape[3:])
    return F.conv3d(x, weight, bias, stride, padding)


def conv_bn_relu(x: torch.Tensor, conv: nn.Module, norm: nn.Module, time_padding: int | None = None,
                 folded: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """``relu(norm(conv(x)))``; ``time_padding`` replaces the convolution's padding along time (axis 2 of a
    ``(B, C, T, H, W)`` input; the stream of ``models/streaming.py`` passes 0). Eval mode: folded (``folded``:
    ``fold_batch_norm``'s result, where the caller keeps it), framewise."""
    padding = conv.padding if time_padding is None else (time_padding, *conv.padding[1:])
    if norm.training:
        if time_padding is None:
            return F.relu(norm(conv(x)))
        return F.relu(norm(F.conv3d(x, conv.weight, conv.bias, conv.stride, padding)))
    weight, bias = folded if folded is not None else fold_batch_norm(conv, norm)
    if isinstance(conv, nn.Conv3d):
        return conv3d_framewise(x, weight, bias, conv.stride, padding).relu_()
    return F.conv2d(x, weight, bias, conv.stride, padding).relu_()


class ConvStep(nn.Module):
    """A convolution without bias (``nn.Conv3d`` or ``nn.Conv2d``, "same" padding), ``batch_norm``, ReLU:
    ``(B, C, *S)`` -> ``(B, O, *S')``."""

    def __init__(self, conv: type[nn.Module], norm: type[nn.Module], in_channels: int, out_channels: int,
                 kernel: tuple, stride: tuple | int = 1):
        super().__init__()
        self.conv = conv(in_channels, out_channels, kernel, stride, same_padding(kernel), bias=False)
        self.bn = batch_norm(norm, out_channels)
        self._folded: tuple | None = None  # (the weights' identity and versions, folded weight, folded bias)

    def forward(self, x: torch.Tensor, time_padding: int | None = None) -> torch.Tensor:
        return conv_bn_relu(x, self.conv, self.bn, time_padding, self._fold())

    def _fold(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The folded weights, kept while no weight changes (its storage and version counter say so): a live step
        runs 28 steps, and folding each again cost 2 ms of it. Not kept where gradients are recorded (the fold
        is then part of the graph) or in a trace (the ONNX export)."""
        if torch.is_grad_enabled() or torch.jit.is_tracing() or self.bn.training:
            return None
        tensors = (self.conv.weight, self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var)
        key = tuple((tensor.data_ptr(), tensor._version) for tensor in tensors)
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, *fold_batch_norm(self.conv, self.bn))
        return self._folded[1:]


class FrameMaxPool(nn.MaxPool3d):
    """Max-pooling over space only, ``(1, k, k)``: ``(B, C, T, H, W)`` -> ``(B, C, T, H', W')``, run per frame as
    a 2-D pooling over a view (the 3-D pooling on channels-last maps was 7× slower)."""

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__((1, kernel, kernel), (1, stride, stride), (0, padding, padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(_as_frames(x), self.kernel_size[1:], self.stride[1:], self.padding[1:])
        return _from_frames(pooled, x)
