"""The model's 25 fps sample grid, and which decoded frame each sample is cut from.

Source videos run at any rate, variable included; a track is sampled every 1/25 s and each sample takes the
decoded frame nearest its time. Prep and render both assign samples while frames stream past, in one pass.
"""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

import numpy as np

from asd_se.core.media import AUDIO_RATE, MODEL_FPS, SAMPLES_PER_FRAME

Item = TypeVar("Item")


def sample_grid(start: float, end: float, fps: int = MODEL_FPS) -> np.ndarray:
    """Sample times ``(T,)`` every ``1/fps`` s from ``start``, the last one nearest ``end``."""
    count = max(int(round((end - start) * fps)) + 1, 1)
    return start + np.arange(count) / fps


def nearest_frames(sample_times: np.ndarray, frames: Iterable[tuple[float, Item]], tail: float
                   ) -> Iterator[tuple[float, Item, np.ndarray]]:
    """Pass ``(time, item)`` frames through, each with the indices ``(K,)`` of the samples (into
    ``sample_times``, in time order) whose nearest frame it is. One frame of delay, so a frame is yielded
    once the next one has shown where the boundary lies. Samples later than the last frame + ``tail`` are
    never assigned (the caller reports them as past the end)."""
    order = np.argsort(sample_times, kind="stable")
    sorted_times = np.asarray(sample_times)[order]
    cursor = 0
    previous: tuple[float, Item] | None = None

    def take(limit: float) -> np.ndarray:
        nonlocal cursor
        end = int(np.searchsorted(sorted_times, limit, side="right"))
        chosen, cursor = order[cursor:end], max(cursor, end)
        return chosen

    for time, item in frames:
        if previous is not None:
            yield previous[0], previous[1], take((previous[0] + time) / 2)
        previous = (time, item)
    if previous is not None:
        yield previous[0], previous[1], take(previous[0] + tail)


def audio_segment(audio: np.ndarray, start: float, frames: int) -> np.ndarray:
    """``(frames · 640,)`` samples of 16 kHz ``audio (N,)`` from ``start`` s, zero-padded where it does not reach."""
    first = int(round(start * AUDIO_RATE))
    segment = np.zeros(frames * SAMPLES_PER_FRAME, np.float32)
    lo, hi = max(first, 0), min(first + len(segment), len(audio))
    if hi > lo:
        segment[lo - first:hi - first] = audio[lo:hi]
    return segment
