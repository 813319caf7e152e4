"""THE scoring engine: a face track's per-frame speaking probabilities and — on request — each explainer's
maps from the same forward pass, window by window. ``evaluate``, ``render`` and ``explain-eval`` all score
through here, so a track gets the same scores whichever command asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch

from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.core.timing import StageTimer
from asd_se.explain.base import ExplainableModel, Explainer

WINDOW_FRAMES = 1000  # 40 s: longer tracks are scored in overlapping windows


def windows(frames: int, window: int = WINDOW_FRAMES) -> list[tuple[int, int, int, int]]:
    """``(start, end, keep_start, keep_end)`` windows covering ``frames``; overlap by half, and each frame is
    taken from the window where it lies most central (context on both sides)."""
    if frames <= window:
        return [(0, frames, 0, frames)]
    hop = window // 2
    starts = list(range(0, frames - window, hop)) + [frames - window]
    spans = []
    for i, start in enumerate(starts):
        keep_start = 0 if i == 0 else (start + window // 4 if i < len(starts) - 1 else spans[-1][3])
        keep_end = frames if i == len(starts) - 1 else start + 3 * window // 4
        spans.append((start, start + window, keep_start, keep_end))
    return spans


def iter_windows(faces, audio: np.ndarray, device: torch.device, window: int = WINDOW_FRAMES
                 ) -> Iterator[tuple[slice, slice, torch.Tensor, torch.Tensor]]:
    """A track ``faces (T, S, S)`` uint8 (an array, or anything sliceable with a length) and ``audio (640·T,)``
    window by window: the track frames the window decides, where those lie inside the window, and the
    window's model inputs ``(1, L, S, S)`` and ``(1, 640·L)`` on ``device``."""
    for start, end, keep_start, keep_end in windows(len(faces), window):
        clip = torch.from_numpy(np.ascontiguousarray(faces[start:end]))[None].to(device)
        sound = torch.from_numpy(np.ascontiguousarray(audio[start * SAMPLES_PER_FRAME:end * SAMPLES_PER_FRAME]))
        yield slice(keep_start, keep_end), slice(keep_start - start, keep_end - start), clip, sound[None].to(device)


@dataclass
class ClipScores:
    """One clip of T frames: speaking probabilities ``probs (T,)`` of the audio-visual head and
    ``audio_probs``/``visual_probs (T,)`` of the auxiliary heads; ``maps`` per explainer name ``(T, h, w)`` in
    [0, 1]; ``se_weights`` ``(C,)`` or ``(T, C)`` where the model has an SE block; ``channels`` per frame, the
    channels an explainer selected (the SE map's, highest SE value first)."""

    probs: torch.Tensor
    audio_probs: torch.Tensor
    visual_probs: torch.Tensor
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    se_weights: torch.Tensor | None = None
    channels: list[list[int]] | None = None


def score_clip(model: ExplainableModel, faces: torch.Tensor, audio: torch.Tensor,
               explainers: Sequence[Explainer] = (), timer: StageTimer | None = None) -> ClipScores:
    """Faces ``(1, T, S, S)`` + audio ``(1, 640·T)`` -> ClipScores: one forward pass, then each explainer from
    its activations and output. Time goes to ``timer``'s stages ``model`` and ``<name>_maps``."""
    timer = timer or StageTimer()
    model.eval()
    with timer.stage("model", faces.device), torch.no_grad():
        maps = model.visual_maps(faces)
        output = model.decide(maps, audio, explain=True)
        heads = torch.sigmoid(torch.stack([output.logits[0], output.audio_logits[0], output.visual_logits[0]]).float())
    scores = ClipScores(*heads, se_weights=None if output.se_weights is None else output.se_weights[0])
    for explainer in explainers:
        with timer.stage(f"{explainer.name}_maps", faces.device):
            scores.maps[explainer.name] = explainer(model, maps, audio, output)
            scores.channels = scores.channels or explainer.channels(output)
    return scores


@dataclass
class TrackScores:
    """Per frame of a track (T frames): ``probs``, ``audio_probs``, ``visual_probs`` ``(T,)`` float32; ``maps`` per
    explainer ``(T, h, w)`` float16 in [0, 1]; ``channels`` per frame (empty lists without an SE map)."""

    probs: np.ndarray
    audio_probs: np.ndarray
    visual_probs: np.ndarray
    maps: dict[str, np.ndarray]
    channels: list[list[int]]


def score_track(model: ExplainableModel, faces, audio: np.ndarray, device: torch.device,
                explainers: Sequence[Explainer] = (), window: int = WINDOW_FRAMES,
                timer: StageTimer | None = None) -> TrackScores:
    """Every frame of a track ``faces (T, S, S)`` (see ``iter_windows``) with ``audio (640·T,)``."""
    count = len(faces)
    heads = np.zeros((3, count), np.float32)
    maps: dict[str, np.ndarray] = {}
    channels: list[list[int]] = [[] for _ in range(count)]
    for frames, inside, clip, sound in iter_windows(faces, audio, device, window):
        scores = score_clip(model, clip, sound, explainers, timer)
        heads[:, frames] = torch.stack([scores.probs, scores.audio_probs, scores.visual_probs])[:, inside].cpu().numpy()
        for name, low in scores.maps.items():
            maps.setdefault(name, np.zeros((count, *low.shape[1:]), np.float16))[frames] = low[inside].cpu().numpy()
        if scores.channels is not None:
            channels[frames] = scores.channels[inside]
    return TrackScores(*heads, maps, channels)
