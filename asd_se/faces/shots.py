"""Shot-cut detection: a track must never continue from one shot into the next."""

from __future__ import annotations

import numpy as np

THUMB_SIZE = (64, 36)  # (width, height) of the grey thumbnails compared


class ShotCutDetector:
    """Flags a hard cut when consecutive grey thumbnails ``(36, 64)`` differ in BOTH their grey-level
    histogram (half the L1 distance, 0-1) and their pixels (mean absolute difference / 255). Motion changes
    pixels but keeps the histogram; a fade in lighting shifts the histogram slowly; a cut changes both at once."""

    def __init__(self, histogram_threshold: float = 0.2, pixel_threshold: float = 0.1, bins: int = 32):
        self.histogram_threshold, self.pixel_threshold, self.bins = histogram_threshold, pixel_threshold, bins
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, thumb: np.ndarray) -> bool:
        """True when ``thumb`` starts a new shot (never for the first frame)."""
        pixels = thumb.astype(np.float32) / 255.0
        histogram = np.bincount((thumb.reshape(-1).astype(np.int64) * self.bins) // 256, minlength=self.bins)
        histogram = histogram / histogram.sum()
        previous, self._previous = self._previous, (pixels, histogram)
        if previous is None:
            return False
        histogram_change = 0.5 * np.abs(histogram - previous[1]).sum()
        pixel_change = np.abs(pixels - previous[0]).mean()
        return bool(histogram_change > self.histogram_threshold and pixel_change > self.pixel_threshold)
