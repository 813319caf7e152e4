"""What a live stream keeps of its recent past: per-sample items by index (crops, boxes, maps, results) and the
16 kHz audio, each dropped once no decision or output can need it, so memory stays flat however long it runs."""

from __future__ import annotations

import numpy as np


class Ring:
    """Items of consecutive indices ``[start, end)``; old ones are dropped with ``trim``."""

    def __init__(self, start: int = 0):
        self.start, self.items = start, []

    @property
    def end(self) -> int:
        return self.start + len(self.items)

    def append(self, item) -> None:
        self.items.append(item)

    def extend(self, items) -> None:
        self.items.extend(items)

    def get(self, index: int):
        return self.items[index - self.start]

    def slice(self, first: int, last: int) -> list:
        """The items of indices ``[first, last)`` (those still held)."""
        return self.items[max(0, first - self.start):max(0, last - self.start)]

    def trim(self, before: int) -> None:
        """Forget the items before index ``before``."""
        drop = min(max(0, before - self.start), len(self.items))
        del self.items[:drop]
        self.start += drop


class AudioRing:
    """The stream's 16 kHz mono waveform, sample 0 at the stream's time 0; only the recent part is held."""

    def __init__(self):
        self.start = 0
        self.data = np.zeros(0, np.float32)

    @property
    def end(self) -> int:
        """One past the last sample received."""
        return self.start + len(self.data)

    def extend(self, samples: np.ndarray) -> None:
        if len(samples):
            self.data = np.concatenate([self.data, samples.astype(np.float32)])

    def span(self, first: int, last: int) -> np.ndarray:
        """Samples ``[first, last)`` ``(last - first,)``; zeros where nothing is held (before the stream, not yet
        arrived, or a source without audio: silence, as render scores it)."""
        out = np.zeros(last - first, np.float32)
        lo, hi = max(first, self.start), min(last, self.end)
        if hi > lo:
            out[lo - first:hi - first] = self.data[lo - self.start:hi - self.start]
        return out

    def trim(self, before: int) -> None:
        drop = min(max(0, before - self.start), len(self.data))
        self.data = self.data[drop:]
        self.start += drop
