"""THE face crop: every face the model sees (prep, training, evaluate, render) is cut by this function."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 112
CROP_MARGIN = 0.4
PAD_VALUE = 110


@dataclass(frozen=True)
class CropRegion:
    """The square of the frame a crop was cut from, in frame pixels (may extend past the frame edges)."""

    x0: int
    y0: int
    side: int

    def to_frame(self, u: np.ndarray, v: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Map crop pixel coordinates ``(u, v)`` back to frame pixel coordinates."""
        scale = self.side / crop_size
        return self.x0 + u * scale, self.y0 + v * scale


def crop_region(box: tuple[float, float, float, float], margin: float = CROP_MARGIN) -> CropRegion:
    """The square around a face box ``(x1, y1, x2, y2)`` in pixels: side = longer box side × (1 + margin)."""
    x1, y1, x2, y2 = box
    side = max(1, int(round(max(x2 - x1, y2 - y1) * (1.0 + margin))))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return CropRegion(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side)


def face_crop(gray: np.ndarray, box: tuple[float, float, float, float], size: int = CROP_SIZE,
              margin: float = CROP_MARGIN) -> tuple[np.ndarray, CropRegion]:
    """Cut the square face crop for ``box`` (pixels) out of a ``(H, W)`` uint8 frame.

    Returns the ``(size, size)`` uint8 crop and the region it came from. Parts outside the frame are filled
    with a constant grey, so faces at the border keep their position inside the crop.
    """
    region = crop_region(box, margin)
    height, width = gray.shape[:2]
    square = np.full((region.side, region.side), PAD_VALUE, np.uint8)
    fx0, fy0 = max(region.x0, 0), max(region.y0, 0)
    fx1, fy1 = min(region.x0 + region.side, width), min(region.y0 + region.side, height)
    if fx1 > fx0 and fy1 > fy0:
        square[fy0 - region.y0:fy1 - region.y0, fx0 - region.x0:fx1 - region.x0] = gray[fy0:fy1, fx0:fx1]
    interpolation = cv2.INTER_AREA if region.side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation), region
