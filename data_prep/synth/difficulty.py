"""How hard a synthetic video is: the phenomena that make active speaker detection hard on real footage (AVA's
small faces, occluded mouths, profiles, blur, dark and heavily compressed scenes, lips out of sync, speakers who
barely move their lips, laughter, music), each drawn per video or per face from the video's own seed.

``standard`` is the original world (every draw here off, so its videos are unchanged bit for bit); ``easy``
removes its hard negatives; ``hard`` turns every phenomenon on. What a phenomenon does lives where it is drawn
(``plan.py``, ``face.py``, ``render.py``, ``speech.py``); this file only says how often and how strongly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXTRA_SEED = 15_485_863  # the phenomena draw from their own generator: the standard plan stays as it was
# a small face is a far one: drawn faces stay crisp at any size, real far faces lose the lips to the optics
FAR_BLUR_PX, FAR_CONTRAST = (0.8, 1.6), (0.35, 0.6)


@dataclass(frozen=True)
class Difficulty:
    """Shares (of videos or faces) and strengths of each phenomenon."""

    name: str
    face_counts: tuple[int, ...] | None = None  # replaces the config's face counts where set
    hard_negatives: bool = True  # voiceless mouthing and off-screen speech
    snr_db: tuple[float, float] = (3.0, 25.0)
    small_faces: float = 0.0  # share of faces drawn 24-44 px wide (AVA's "small" is < 64 px) in a two-face
    # shot, in proportion to the faces on screen: a group is filmed in a wider shot (1 face: half as many)
    occluded: float = 0.0  # share of faces with a hand or microphone over part of the mouth, some of the time
    turned: float = 0.0  # share of faces that turn up to profile
    subtle: float = 0.0  # share of faces that speak with small mouth movements
    out_of_sync: float = 0.0  # share of faces whose lips lag or lead their voice by 1-3 frames
    laughter: float = 0.0  # share of faces that laugh now and then (vocal, not speech: NOT_SPEAKING)
    blurred: float = 0.0  # share of videos with motion blur in stretches
    dark: float = 0.0  # share of videos shot in low light
    compressed: float = 0.0  # share of videos encoded at a heavy compression (x264 CRF 36-42)
    music: float = 0.0  # share of videos with a music bed


DIFFICULTIES = {
    "easy": Difficulty("easy", face_counts=(1, 2), hard_negatives=False, snr_db=(15.0, 25.0)),
    "standard": Difficulty("standard"),
    "hard": Difficulty("hard", face_counts=(1, 2, 3, 4), snr_db=(3.0, 20.0), small_faces=0.25, occluded=0.2,
                       turned=0.25, subtle=0.2, out_of_sync=0.25, laughter=0.3, blurred=0.25, dark=0.2,
                       compressed=0.25, music=0.3),
}


@dataclass(frozen=True)
class FaceExtras:
    """One face's phenomena."""

    small_width_px: float | None = None  # drawn this wide instead of its slot's size
    far_blur_px: float = 0.0  # a small face is far: out of focus by this Gaussian sigma (px) ...
    far_contrast: float = 1.0  # ... and this much of its contrast left (haze, a cheap lens)
    occlusions: tuple[tuple[float, float], ...] = ()  # (start, end) s when a hand / microphone covers the mouth
    occluder: str = "hand"  # or "microphone"
    cover: float = 0.5  # share of the mouth box the occluder covers
    max_yaw: float | None = None  # the face turns up to this yaw (1 = profile) instead of a little
    mouth_gain: float = 1.0  # < 1: small mouth movements
    lip_offset_s: float = 0.0  # > 0: lips lag the voice; < 0: lead it
    laughs: bool = False


@dataclass(frozen=True)
class VideoExtras:
    """One video's phenomena (and each face's)."""

    faces: tuple[FaceExtras, ...] = ()
    blur: tuple[tuple[float, float, int], ...] = ()  # (start, end, kernel length px) of motion blur
    light_gain: float = 1.0  # < 1: low light
    crf: int = 20
    music_db: float | None = None  # music bed level relative to speech, dB
    seed: int = 0  # for what is drawn while rendering (music notes)

    def face(self, index: int) -> FaceExtras:
        return self.faces[index] if index < len(self.faces) else FaceExtras()


def _stretches(rng: np.random.Generator, duration: float, share: float, length: tuple[float, float]
               ) -> list[tuple[float, float]]:
    """Non-overlapping stretches covering about ``share`` of ``[0, duration]``."""
    spans, t = [], rng.uniform(0, 2.0)
    while t < duration:
        span = rng.uniform(*length)
        if rng.random() < share:
            spans.append((t, min(t + span, duration)))
        t += span + rng.uniform(0.2, 1.0)
    return spans


def draw_extras(difficulty: Difficulty, seed: int, faces: int, duration: float) -> VideoExtras:
    """The phenomena of one video with ``faces`` faces, from its own generator."""
    rng = np.random.default_rng(seed + EXTRA_SEED)
    extras = []
    for _ in range(faces):
        draw = rng.random(8)
        occluded = draw[1] < difficulty.occluded
        cover = float(rng.uniform(0.35, 0.7))
        small = draw[0] < difficulty.small_faces * faces / 2
        far = (float(rng.uniform(*FAR_BLUR_PX)), float(rng.uniform(*FAR_CONTRAST))) if small else (0.0, 1.0)
        extras.append(FaceExtras(
            small_width_px=float(rng.uniform(24, 44)) if small else None, far_blur_px=far[0], far_contrast=far[1],
            occlusions=tuple(_stretches(rng, duration, 0.4, (1.5, 5.0))) if occluded else (),
            occluder="microphone" if occluded and draw[2] < 0.5 else "hand",
            cover=cover if occluded else FaceExtras.cover,
            max_yaw=float(rng.uniform(0.6, 1.0)) if draw[3] < difficulty.turned else None,
            mouth_gain=float(rng.uniform(0.3, 0.5)) if draw[4] < difficulty.subtle else 1.0,
            lip_offset_s=float(rng.choice([-1, 1]) * rng.integers(1, 4) / 25) if draw[5] < difficulty.out_of_sync
            else 0.0,
            laughs=bool(draw[6] < difficulty.laughter)))
    draw = rng.random(4)
    blur = tuple((a, b, int(rng.integers(5, 15))) for a, b in _stretches(rng, duration, 0.4, (0.5, 2.5))
                 ) if draw[0] < difficulty.blurred else ()
    return VideoExtras(tuple(extras), blur,
                       light_gain=float(rng.uniform(0.22, 0.45)) if draw[1] < difficulty.dark else 1.0,
                       crf=int(rng.integers(36, 43)) if draw[2] < difficulty.compressed else 20,
                       music_db=float(rng.uniform(-12, -3)) if draw[3] < difficulty.music else None,
                       seed=int(rng.integers(2 ** 31)))

