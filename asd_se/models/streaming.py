"""A visual encoder run over a stream in pieces, each frame encoded once: every temporal convolution keeps the
last input frames its kernel still needs, so frames pushed a few at a time give exactly the maps one pass over
the whole track gives — each ``temporal_radius`` frames later (the future the encoder's own kernels reach).

Works for an encoder that is one chain (``chain_layers``: no branch, no residual) of per-frame layers
(convolution steps with a temporal kernel of 1, BatchNorm, ReLU, pooling over space) and temporal convolution steps
(``ConvStep``: odd kernel, stride 1, "same" padding); LR-ASD's is. ``stream_encoder`` says None for any other.
"""

from __future__ import annotations

import torch
from torch import nn

from asd_se.models.framewise import ConvStep

PER_FRAME = (nn.BatchNorm3d, nn.ReLU)


def _temporal(layer: nn.Module) -> bool | None:
    """True for a temporal convolution step the stream can carry, False for a per-frame layer, None otherwise."""
    if isinstance(layer, ConvStep) and isinstance(layer.conv, nn.Conv3d):
        conv = layer.conv
        kernel, stride, padding, dilation = conv.kernel_size[0], conv.stride[0], conv.padding, conv.dilation[0]
        if kernel == 1 and stride == 1 and padding[0] == 0:
            return False
        if isinstance(padding, tuple) and kernel % 2 and stride == 1 and dilation == 1 and \
                padding[0] == kernel // 2:
            return True
        return None
    if isinstance(layer, nn.MaxPool3d):
        kernel, stride, padding = (v if isinstance(v, tuple) else (v,) * 3
                                   for v in (layer.kernel_size, layer.stride, layer.padding))
        return False if kernel[0] == stride[0] == 1 and padding[0] == 0 else None
    return False if isinstance(layer, PER_FRAME) else None


class EncoderStream:
    """One track's stream through a chain encoder's ``layers``: ``push`` faces (already normalised,
    ``(B, 1, n, H, W)``) and get the maps ``(B, C, m, h, w)`` of the frames that became final (None: none yet);
    ``tail`` gives the maps of the frames still open as a clip ending now would have them (zeros beyond), without
    ending the stream."""

    def __init__(self, layers: list[nn.Module]):
        self.layers = layers
        self.kernels = [layer.conv.kernel_size[0] if _temporal(layer) else None for layer in layers]
        self.state: list[torch.Tensor | None] = [None] * len(layers)  # per temporal layer: its last inputs
        self.batch: tuple[EncoderStream, int] | None = None  # (merged stream, row): its state is that row's
        self.rows = 1  # streams merged into this one

    def _run(self, x: torch.Tensor | None, ending: bool) -> torch.Tensor | None:
        states = []
        for layer, kernel, state in zip(self.layers, self.kernels, self.state):
            if kernel is None:
                x = layer(x) if x is not None else None
                states.append(state)
                continue
            pad = kernel // 2
            if state is None and x is not None:  # the clip's start: the zeros "same" padding puts before it
                state = _frames_like(x, pad).zero_()
            if state is None:
                states.append(None)
                continue
            parts = [state] + ([x] if x is not None else [])
            if ending:
                parts.append(_frames_like(state, pad).zero_())
            joined = torch.cat(parts, dim=2, out=_frames_like(state, sum(part.shape[2] for part in parts)))
            states.append(joined[:, :, -(kernel - 1):])
            x = None if joined.shape[2] < kernel else layer(joined, time_padding=0)
        if not ending:
            self.state, self.batch = states, None
        return x

    def push(self, faces: torch.Tensor) -> torch.Tensor | None:
        return self._run(faces, ending=False)

    @staticmethod
    def push_together(streams: list["EncoderStream"], faces: torch.Tensor) -> list[torch.Tensor | None]:
        """``push`` one face clip ``(1, 1, n, H, W)`` per stream (``faces`` ``(B, 1, n, H, W)``); the maps per
        stream."""
        return EncoderStream._together(streams, lambda stream, rows: stream.push(faces[rows]))

    @staticmethod
    def tail_together(streams: list["EncoderStream"]) -> list[torch.Tensor | None]:
        """``tail`` of every stream; the maps ``(1, C, m, h, w)`` per stream."""
        return EncoderStream._together(streams, lambda stream, rows: stream.tail())

    @staticmethod
    def _together(streams: list["EncoderStream"], run) -> list[torch.Tensor | None]:
        """``run(stream, rows)`` (``rows``: that stream's rows of the batch) once, on the streams merged into one
        batch, where they stand at the same point (their states alike), else stream by stream. The merged stream
        is kept for the next call on the same streams, unless one of them was run alone meanwhile (joining the
        states anew copied them all, twice a live step)."""
        shapes = {tuple(None if state is None else tuple(state.shape[1:]) for state in stream.state)
                  for stream in streams}
        if len(streams) == 1 or len(shapes) > 1:
            return [run(stream, slice(i, i + 1)) for i, stream in enumerate(streams)]
        merged = streams[0].batch[0] if streams[0].batch is not None else None
        if merged is None or merged.rows != len(streams) or \
                any(stream.batch != (merged, i) for i, stream in enumerate(streams)):
            merged = EncoderStream(streams[0].layers)
            merged.state = [None if states[0] is None else torch.cat(states) for states in
                            zip(*(stream.state for stream in streams))]
            merged.rows = len(streams)
        before = merged.state
        maps = run(merged, slice(None))
        for i, stream in enumerate(streams):
            if merged.state is not before:  # a push moved the states on (a tail leaves them as they were)
                stream.state = [None if state is None else state[i:i + 1] for state in merged.state]
            stream.batch = (merged, i)
        return [None if maps is None else maps[i:i + 1] for i in range(len(streams))]

    def tail(self) -> torch.Tensor | None:
        return self._run(None, ending=True)


def _frames_like(like: torch.Tensor, frames: int) -> torch.Tensor:
    """An empty ``(B, C, frames, H, W)`` laid out channels-last, as the encoder's maps are. Joined into a tensor
    laid out otherwise (zeros made plainly; a one-frame map whose strides read either way), the maps were copied
    by the join and by every layer after it: a quarter of a tail's time."""
    return torch.empty((*like.shape[:2], frames, *like.shape[3:]), dtype=like.dtype, device=like.device,
                       memory_format=torch.channels_last_3d)


def chain_layers(encoder: nn.Module) -> list[nn.Module] | None:
    """The layers of a chain encoder in the order they run (it declares ``chain`` = its modules run one after
    another, in order; a ``ConvStep`` is one layer), each one the stream can carry; None for any other encoder."""
    if not getattr(encoder, "chain", False):
        return None
    layers = list(_layers(encoder))
    return layers if all(_temporal(layer) is not None for layer in layers) else None


def _layers(module: nn.Module):
    """``module``'s convolution steps and other leaf modules, in the order they are defined."""
    if isinstance(module, ConvStep) or not list(module.children()):
        yield module
        return
    for child in module.children():
        yield from _layers(child)
