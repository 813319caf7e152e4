"""Drawn faces that a real CNN face detector finds: skin, hair, eyes, brows, nose and a moving mouth."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SKIN_TONES = [(189, 214, 245), (160, 194, 234), (125, 165, 215), (100, 140, 195), (82, 120, 172), (70, 104, 155)]
FACE_WIDTH = 0.78  # a face box's width over its height
STANDARD_MAX_YAW = 0.45  # faces of the standard world turn up to this (plan.py); beyond it, towards profile
HAIR_COLOURS = [(20, 20, 25), (25, 40, 60), (40, 70, 110), (80, 140, 190), (150, 150, 155), (30, 50, 120)]


@dataclass(frozen=True)
class FaceStyle:
    """How one face looks (colours are BGR)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    lips: tuple[int, int, int]
    aspect: float  # face width / face height
    hair_volume: float
    brow: float


@dataclass(frozen=True)
class FacePose:
    """Where a face is in one frame: centre and height in pixels, yaw in [-1, 1], mouth opening in [0, 1]."""

    cx: float
    cy: float
    height: float
    yaw: float
    mouth: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """The face box ``(x1, y1, x2, y2)`` in pixels: forehead to chin, cheek to cheek."""
        half_w, half_h = self.height * FACE_WIDTH / 2, self.height * 0.5
        return self.cx - half_w, self.cy - half_h * 0.9, self.cx + half_w, self.cy + half_h

    @property
    def turn(self) -> float:
        """How far past the standard world's turns the face is: 0 up to |yaw| 0.45, 1 in profile."""
        return max(0.0, abs(self.yaw) - STANDARD_MAX_YAW) / (1 - STANDARD_MAX_YAW)

    def feature_shift(self, face_width: float) -> float:
        """How far (px) eyes, nose and mouth move towards the side the face turns to."""
        return self.yaw * face_width * 0.15 + float(np.sign(self.yaw)) * self.turn * face_width * 0.2

    def mouth_box(self, aspect: float) -> tuple[float, float, float, float]:
        """A fixed-size box around the mouth (independent of the opening), in pixels."""
        width = self.height * aspect
        mx = self.cx + self.feature_shift(width)
        my = self.cy + self.height * 0.27
        return mx - width * 0.24, my - self.height * 0.1, mx + width * 0.24, my + self.height * 0.12


def random_style(rng: np.random.Generator) -> FaceStyle:
    """A random face style."""
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) * rng.uniform(0.92, 1.05)
    hair = np.array(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]) * rng.uniform(0.8, 1.2)
    if abs(hair.mean() - skin.mean()) < 50:  # hair the shade of the skin hides the face outline
        hair = np.array(HAIR_COLOURS[0]) if skin.mean() > 110 else np.array(HAIR_COLOURS[4])
    lips = np.array([70, 60, 150]) * rng.uniform(0.7, 1.1)
    return FaceStyle(tuple(int(c) for c in np.clip(skin, 0, 255)), tuple(int(c) for c in np.clip(hair, 0, 255)),
                     tuple(int(c) for c in rng.integers(20, 230, 3)),
                     tuple(int(c) for c in np.clip(lips, 0, 255)), float(rng.uniform(0.72, 0.84)),
                     float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.018, 0.032)))


def _pt(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


def draw_face(image: np.ndarray, pose: FacePose, style: FaceStyle) -> None:
    """Draw one face into a ``(H, W, 3)`` uint8 BGR image, in place."""
    fh = pose.height
    fw = fh * style.aspect
    cx, cy = pose.cx, pose.cy
    aa = cv2.LINE_AA
    shade = tuple(int(c * 0.62) for c in style.skin)
    cv2.ellipse(image, _pt(cx, cy + fh * 1.05), _pt(fw * 1.1, fh * 0.45), 0, 180, 360, style.shirt, -1, aa)
    cv2.rectangle(image, _pt(cx - fw * 0.2, cy + fh * 0.3), _pt(cx + fw * 0.2, cy + fh * 0.68), shade, -1, aa)
    hair_h = 0.56 + 0.06 * style.hair_volume
    cv2.ellipse(image, _pt(cx, cy - fh * 0.08), _pt(fw * (0.56 + 0.05 * style.hair_volume), fh * hair_h), 0, 0, 360,
                style.hair, -1, aa)
    squeeze = 1 - 0.3 * pose.turn  # a face turned towards profile shows less of its width
    cv2.ellipse(image, _pt(cx, cy), _pt(fw / 2 * squeeze, fh / 2), 0, 0, 360, style.skin, -1, aa)
    cv2.ellipse(image, _pt(cx, cy - fh * 0.33), _pt(fw * 0.5 * squeeze, fh * 0.2), 0, 180, 360, style.hair, -1, aa)
    shift = pose.feature_shift(fw)
    for side in (-1, 1):
        if pose.turn > 0.5 and side == -np.sign(pose.yaw):
            continue  # the far eye is hidden
        ex, ey = cx + shift + side * fw * (0.2 - 0.03 * side * pose.yaw), cy - fh * 0.08
        cv2.ellipse(image, _pt(ex, ey), _pt(fw * 0.1, fh * 0.045), 0, 0, 360, (235, 238, 240), -1, aa)
        cv2.circle(image, _pt(ex + shift * 0.2, ey), max(1, int(fh * 0.035)), (40, 30, 25), -1, aa)
        cv2.line(image, _pt(ex - fw * 0.11, ey - fh * 0.09), _pt(ex + fw * 0.11, ey - fh * 0.1), style.hair,
                 max(1, int(fh * style.brow)), aa)
    nose = np.array([[cx + shift * 1.3, cy - fh * 0.02], [cx + shift * 1.3 - fw * 0.06, cy + fh * 0.12],
                     [cx + shift * 1.3 + fw * 0.06, cy + fh * 0.12]], np.int32)
    cv2.polylines(image, [nose], False, shade, max(1, int(fh * 0.015)), aa)
    mouth_w = fw * 0.18 * (1 - 0.4 * pose.turn)
    mouth_h = fh * (0.014 + 0.085 * pose.mouth)
    mx, my = cx + shift, cy + fh * 0.27
    cv2.ellipse(image, _pt(mx, my), _pt(mouth_w, mouth_h + 1), 0, 0, 360, style.lips, -1, aa)
    if pose.mouth > 0.12:
        cv2.ellipse(image, _pt(mx, my), _pt(mouth_w * 0.8, max(1.0, mouth_h * 0.68)), 0, 0, 360, (35, 20, 45), -1, aa)
        cv2.ellipse(image, _pt(mx, my - mouth_h * 0.55), _pt(mouth_w * 0.6, max(1.0, mouth_h * 0.18)), 0, 0, 360,
                    (225, 228, 232), -1, aa)


def draw_occluder(image: np.ndarray, mouth_box: tuple[float, float, float, float], kind: str, cover: float,
                  skin: tuple[int, int, int]) -> None:
    """A hand (skin-coloured, from below) or a microphone (dark, from the side) over ``cover`` of the mouth box."""
    x1, y1, x2, y2 = mouth_box
    width, height = x2 - x1, y2 - y1
    aa = cv2.LINE_AA
    if kind == "hand":
        top = y2 - cover * height
        cv2.ellipse(image, _pt((x1 + x2) / 2, top + height * 0.9), _pt(width * 0.7, height * 0.9), 0, 0, 360, skin,
                    -1, aa)
        for finger in range(4):  # knuckle lines
            fx = x1 + width * (0.2 + 0.2 * finger)
            cv2.line(image, _pt(fx, top + height * 0.15), _pt(fx, top + height * 0.5),
                     tuple(int(c * 0.7) for c in skin), max(1, int(height * 0.06)), aa)
    else:  # the head on the mouth's right part, the handle off to the right
        radius = max(cover * width * 0.5, height * 0.4)
        centre = (x2 - cover * width + radius, (y1 + y2) / 2)
        cv2.rectangle(image, _pt(centre[0], centre[1] - height * 0.15), _pt(centre[0] + width * 1.5,
                                                                          centre[1] + height * 0.15),
                      (40, 40, 45), -1, aa)
        cv2.circle(image, _pt(*centre), max(2, int(radius)), (70, 70, 75), -1, aa)
