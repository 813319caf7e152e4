"""Wall time per named stage (decode, detect, track, crop, model, se_maps, draw, encode, ...)."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterable, Iterator, TypeVar

import torch

Item = TypeVar("Item")


class StageTimer:
    """Accumulates seconds per named stage; stages may repeat and interleave (never nest the same name).
    A stage given the ``device`` it computes on waits for that GPU before its clock stops, so the split between
    stages that launch CUDA work (the forward pass, the maps) is honest."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def stage(self, name: str, device: torch.device | None = None) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            self.seconds[name] += time.perf_counter() - start

    def iterate(self, name: str, items: Iterable[Item]) -> Iterator[Item]:
        """Yield from ``items``, charging the time spent producing each item (e.g. decoding) to ``name``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item

    def report(self) -> dict[str, float]:
        """``{stage: seconds}`` rounded to ms."""
        return {name: round(value, 3) for name, value in self.seconds.items()}
