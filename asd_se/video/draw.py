"""Drawing decisions and explanations onto BGR frames: boxes coloured by speaking probability, labels,
JET heatmaps blended inside the face box, and the optional side panel of enlarged crops."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from asd_se.core.crop import CROP_SIZE, crop_region, face_crop

FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class FaceDrawing:
    """One face on one frame: ``box (4,)`` pixels (drawn), speaking probability, label text, and the
    explanation ``heat (h, w)`` in [0, 1] (None: no heatmap) over the square crop region of ``crop_box`` — the
    box THE crop of style ``crop`` was cut around (default: ``box``)."""

    box: np.ndarray
    prob: float
    label: str
    heat: np.ndarray | None
    crop: str = "asd-se"
    crop_box: np.ndarray | None = None

    @property
    def cut_box(self) -> np.ndarray:
        return self.box if self.crop_box is None else self.crop_box


def speaking_colour(prob: float) -> tuple[int, int, int]:
    """BGR from red (0, not speaking) through yellow (0.5) to green (1, speaking)."""
    return 0, int(round(255 * min(1.0, 2 * prob))), int(round(255 * min(1.0, 2 * (1 - prob))))


def _heat_colours(heat: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(h, w)`` map in [0, 1] -> ``(height, width, 3)`` JET colours, upsampled bicubically."""
    upsampled = cv2.resize(heat.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.applyColorMap(np.round(np.clip(upsampled, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)


def blend_heatmap(image: np.ndarray, box: np.ndarray, heat: np.ndarray, alpha: float, crop: str = "asd-se") -> None:
    """Blend ``heat`` (over the ``crop``-style region of ``box``) into ``image`` in place, inside the box only."""
    region = crop_region(tuple(box), crop)
    x0, y0, side = (int(round(v)) for v in (region.x0, region.y0, region.side))
    height, width = image.shape[:2]
    x1, y1 = max(int(round(box[0])), x0, 0), max(int(round(box[1])), y0, 0)
    x2 = min(int(round(box[2])), x0 + side, width)
    y2 = min(int(round(box[3])), y0 + side, height)
    if x2 <= x1 or y2 <= y1:
        return
    colours = _heat_colours(heat, side, side)
    inside = colours[y1 - y0:y2 - y0, x1 - x0:x2 - x0]
    patch = image[y1:y2, x1:x2]
    cv2.addWeighted(inside, alpha, patch, 1.0 - alpha, 0.0, dst=patch)


def _text(image: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int], scale: float) -> None:
    """Text with a filled background box whose bottom-left corner is at ``(x, y)``."""
    thickness = max(1, int(round(scale * 2)))
    (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
    y = max(y, h + base)
    cv2.rectangle(image, (x, y - h - base), (x + w, y), colour, cv2.FILLED)
    cv2.putText(image, text, (x, y - base), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def draw_face(image: np.ndarray, face: FaceDrawing, alpha: float) -> None:
    """Heatmap, box and ``label prob`` onto ``image (H, W, 3)`` in place."""
    if face.heat is not None and alpha > 0:
        blend_heatmap(image, face.cut_box, face.heat, alpha, face.crop)
    colour = speaking_colour(face.prob)
    scale = max(0.35, image.shape[0] / 900)
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    cv2.rectangle(image, (x1, y1), (x2, y2), colour, max(1, int(round(scale * 3))))
    _text(image, f"{face.label} {face.prob:.2f}", max(x1, 0), y1, colour, scale)


def draw_banner(image: np.ndarray, text: str) -> None:
    """A notice across the top-left corner (e.g. that the input has no audio)."""
    _text(image, text, 4, 4, (255, 255, 255), max(0.35, image.shape[0] / 900))


def side_panel(image: np.ndarray, gray: np.ndarray, faces: list[FaceDrawing], alpha: float, width: int
               ) -> np.ndarray:
    """``image`` with a panel of ``width`` pixels on its right: per face (as many as fit), its crop out of the
    undrawn frame ``gray (H, W)``, enlarged, with its heatmap, framed in the face's colour."""
    height = image.shape[0]
    panel = np.full((height, width, 3), 32, np.uint8)
    cell = min(width, height)
    for row, face in enumerate(faces[:max(1, height // cell)]):
        crop = cv2.cvtColor(face_crop(gray, tuple(face.cut_box), CROP_SIZE, style=face.crop)[0], cv2.COLOR_GRAY2BGR)
        crop = cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_LINEAR)
        if face.heat is not None:
            cv2.addWeighted(_heat_colours(face.heat, cell, cell), alpha, crop, 1.0 - alpha, 0.0, dst=crop)
        cv2.rectangle(crop, (0, 0), (cell - 1, cell - 1), speaking_colour(face.prob), max(2, cell // 40))
        _text(crop, f"{face.label} {face.prob:.2f}", 2, cell - 2, speaking_colour(face.prob), max(0.35, cell / 400))
        panel[row * cell:(row + 1) * cell, :cell] = crop
    return np.concatenate([image, panel], axis=1)
