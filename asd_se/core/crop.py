"""THE face crop: every face the model sees (prep, training, evaluate, render) is cut by this module.

Two styles (``CROP_STYLES``), chosen by ``model.crop`` and recorded in every checkpoint and track store:
- ``asd-se``: the square around the box, side = longer box side × (1 + margin), centred, resized to 112.
- ``lightasd``: Light-ASD's video inference (``Columbia_test.py``): over a track's 25 fps samples the box
  half-size s = longer side / 2 and the centre (x, y) are median-filtered over 13 samples (``median_filter``:
  zeros beyond the ends, as ``scipy.signal.medfilt``); the frame region rows y − s … y + 1.8·s, columns x ± 1.4·s
  (padding grey 110) is resized to 224×224 and its centre 112×112 kept: the face from brow to chin, tighter than
  asd-se's.

Both work on the grey frame. (Light-ASD resizes the colour crop before converting it to grey: at most one grey
level apart, see the parity test.)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 112
CROP_MARGIN = 0.4
PAD_VALUE = 110
CROP_STYLES = ("asd-se", "lightasd")
LIGHTASD_SMOOTHING = 13  # samples of the median filter on box size and centre
LIGHTASD_SCALE = 0.4  # Columbia_test's cropScale
LIGHTASD_RESIZE = 224  # the region is resized to this, then its centre CROP_SIZE kept


@dataclass(frozen=True)
class CropRegion:
    """The square of the frame a crop shows, in frame pixels (may extend past the frame edges)."""

    x0: float
    y0: float
    side: float

    def to_frame(self, u: np.ndarray, v: np.ndarray, crop_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Map crop pixel coordinates ``(u, v)`` back to frame pixel coordinates."""
        scale = self.side / crop_size
        return self.x0 + u * scale, self.y0 + v * scale


def crop_future(style: str) -> int:
    """How many samples after a sample the box its crop is cut around depends on (lightasd: half the median
    filter; a live run cuts a crop once these have arrived, or as many as its lookahead allows)."""
    return LIGHTASD_SMOOTHING // 2 if style == "lightasd" else 0


def smooth_crop_boxes(boxes: np.ndarray, style: str = "asd-se", open_end: bool = False) -> np.ndarray:
    """A track's boxes ``(T, 4)`` (pixels, one per 25 fps sample) as the crop style uses them: unchanged for
    asd-se; for lightasd the squares (x ± s, y ± s) of the median-filtered centre and half-size. ``open_end``:
    the track goes on past its last box (live): the filter there reads as far back as it can read ahead."""
    if style != "lightasd" or not len(boxes):
        return boxes
    boxes = np.asarray(boxes, np.float64)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    half = median_filter(sides / 2, LIGHTASD_SMOOTHING, open_end)
    x = median_filter((boxes[:, 0] + boxes[:, 2]) / 2, LIGHTASD_SMOOTHING, open_end)
    y = median_filter((boxes[:, 1] + boxes[:, 3]) / 2, LIGHTASD_SMOOTHING, open_end)
    return np.stack([x - half, y - half, x + half, y + half], axis=1)


def median_filter(values: np.ndarray, size: int, open_end: bool = False) -> np.ndarray:
    """``(N,)`` -> ``(N,)``: the median of each ``size`` (odd) neighbourhood, zeros beyond the ends (as
    ``scipy.signal.medfilt``, without importing scipy.signal: 0.6 s of every command's start); with
    ``open_end``, the values go on past the last one, unknown yet: the neighbourhoods there narrow to the values
    on their right (the last value's to itself), so no end is pulled towards the past."""
    half = size // 2
    padded = np.pad(np.asarray(values, np.float64), half)
    out = np.median(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1)
    if open_end:
        for index in range(max(0, len(out) - half), len(out)):  # a few short lists: sorted beats np.median
            reach = len(out) - 1 - index
            out[index] = sorted(padded[index + half - reach:index + half + reach + 1].tolist())[reach]
    return out


def crop_region(box: tuple[float, float, float, float], style: str = "asd-se",
                margin: float = CROP_MARGIN) -> CropRegion:
    """The square of the frame the crop of a face box ``(x1, y1, x2, y2)`` (pixels) shows."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    if style == "lightasd":  # the centre half of the 2.8·s square whose top is at y − s
        half = max(x2 - x1, y2 - y1) / 2.0
        side = (1 + LIGHTASD_SCALE) * half
        return CropRegion(cx - side / 2, cy + LIGHTASD_SCALE * half - side / 2, side)
    side = max(1, int(round(max(x2 - x1, y2 - y1) * (1.0 + margin))))
    return CropRegion(int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), side)


def _cut(gray: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Rows ``top:bottom``, columns ``left:right`` of a ``(H, W)`` frame; what lies outside is PAD_VALUE."""
    height, width = gray.shape[:2]
    out = np.full((max(1, bottom - top), max(1, right - left)), PAD_VALUE, np.uint8)
    r0, r1, c0, c1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if r1 > r0 and c1 > c0:
        out[r0 - top:r1 - top, c0 - left:c1 - left] = gray[r0:r1, c0:c1]
    return out


def face_crop(gray: np.ndarray, box: tuple[float, float, float, float], size: int = CROP_SIZE,
              margin: float = CROP_MARGIN, style: str = "asd-se") -> tuple[np.ndarray, CropRegion]:
    """Cut the ``(size, size)`` uint8 face crop for ``box`` (pixels; for lightasd, a box of
    ``smooth_crop_boxes``) out of a ``(H, W)`` uint8 frame; returns it and the region it shows. Parts outside
    the frame are filled with a constant grey, so faces at the border keep their place in the crop."""
    region = crop_region(box, style, margin)
    if style == "lightasd":
        x1, y1, x2, y2 = box
        half = max(x2 - x1, y2 - y1) / 2.0
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        # the reference pads by int(1.8·s) and slices with int(); floor is the same on the unpadded frame
        face = _cut(gray, int(np.floor(cy - half)), int(np.floor(cy + half * (1 + 2 * LIGHTASD_SCALE))),
                    int(np.floor(cx - half * (1 + LIGHTASD_SCALE))), int(np.floor(cx + half * (1 + LIGHTASD_SCALE))))
        large = cv2.resize(face, (LIGHTASD_RESIZE, LIGHTASD_RESIZE))
        start = (LIGHTASD_RESIZE - size) // 2
        return large[start:start + size, start:start + size], region
    side = int(region.side)
    square = _cut(gray, int(region.y0), int(region.y0) + side, int(region.x0), int(region.x0) + side)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation), region
