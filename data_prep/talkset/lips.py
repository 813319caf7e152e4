"""Mouth boxes from mediapipe's face mesh (Apache-2.0, model inside the wheel): the box around its lip landmarks."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Drop what native code writes to file descriptor 2 meanwhile: mediapipe's TensorFlow Lite prints a
    handful of setup lines there (no switch turns them off)."""
    saved = os.dup(2)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LipFinder:
    """Tracks one face's mesh through a clip's frames, in order. Use as a context manager."""

    def __init__(self):
        with _quiet_native_stderr():
            import mediapipe as mp

            mesh = mp.solutions.face_mesh
            self._mesh = mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                                       min_detection_confidence=0.5, min_tracking_confidence=0.5)
        self._lips = np.array(sorted({i for pair in mesh.FACEMESH_LIPS for i in pair}))
        self._started = False

    def mouth_box(self, rgb: np.ndarray) -> np.ndarray | None:
        """``(4,)`` x1, y1, x2, y2 in pixels of the ``(H, W, 3)`` uint8 RGB frame around the outer and inner
        lip landmarks, or None where the mesh finds no face."""
        if not self._started:  # the first inference prints its own setup lines
            with _quiet_native_stderr():
                found = self._mesh.process(rgb).multi_face_landmarks
            self._started = True
        else:
            found = self._mesh.process(rgb).multi_face_landmarks
        if not found:
            return None
        height, width = rgb.shape[:2]
        points = np.array([(p.x * width, p.y * height) for p in (found[0].landmark[i] for i in self._lips)])
        return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)

    def __enter__(self) -> "LipFinder":
        return self

    def __exit__(self, *exc) -> None:
        self._mesh.close()
