"""One face on one frame as render's document and live's stream both write it."""

from __future__ import annotations

import numpy as np

from asd_se.core.crop import crop_region


def exact(value: float) -> float:
    """A float32 model output as the shortest decimal that reads back to the same float32: no rounding that
    turns a confident model's frames into ties."""
    return float(str(np.float32(value)))


def face_record(frame: int, time: float, box: np.ndarray, cut: np.ndarray, prob: float, score: float, sample: int,
                peak: np.ndarray | None, channels: list[int], crop: str = "asd-se") -> dict:
    """One face on one source frame, as the render document (and ``asd-se live``'s stream) writes it: time, the
    face's box (pixels), probability and the model's score at full float32 precision, its 25 fps sample, and
    with a map (``peak`` ``(2,)``: x, y as fractions of the crop, NaN where the map is all zero) the square the
    map covers (``region``, pixels: the crop of the box ``cut`` it was cut around), the heatmap peak (pixels;
    None where the map is all zero) and the SE ``channels`` (omitted where empty)."""
    record = {"frame": int(frame), "time": round(float(time), 4), "box": [round(float(v), 1) for v in box],
              "prob": exact(prob), "score": exact(score), "sample": int(sample)}
    if peak is not None:
        region = crop_region(tuple(cut), crop)
        record["region"] = [round(region.x0, 1), round(region.y0, 1), round(region.side, 1)]
        if channels:
            record["se_channels"] = channels
        u, v = peak
        record["heatmap_peak"] = None if np.isnan(u) else [round(region.x0 + float(u) * region.side, 1),
                                                            round(region.y0 + float(v) * region.side, 1)]
    return record
