"""Scoring a face track: whole-track, or overlapping windows for long tracks. Used by evaluate AND render."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from asd_se.media import SAMPLES_PER_FRAME
from asd_se.models import ActiveSpeakerModel

WINDOW_FRAMES = 1000  # 40 s: longer tracks are scored in overlapping windows


@dataclass
class TrackScores:
    """Per-frame speaking probabilities ``(T,)`` of the AV head and of the audio-only and visual-only heads."""

    probs: np.ndarray
    audio_probs: np.ndarray
    visual_probs: np.ndarray


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


@torch.no_grad()
def score_track(model: ActiveSpeakerModel, faces: np.ndarray, audio: np.ndarray, device: torch.device,
                window: int = WINDOW_FRAMES) -> TrackScores:
    """Speaking probabilities for every frame of a track."""
    model.eval()
    heads = np.zeros((3, len(faces)), np.float32)
    for frames, inside, clip, sound in iter_windows(faces, audio, device, window):
        output = model(clip, sound)
        logits = torch.stack([output.logits[0], output.audio_logits[0], output.visual_logits[0]])
        heads[:, frames] = torch.sigmoid(logits[:, inside].float()).cpu().numpy()
    return TrackScores(*heads)
