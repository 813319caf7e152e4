"""Training data from the track store (or its frozen-encoder features): windows, frame-budget batches, augmentation.

Every random choice derives from ``(seed, epoch, rank)``, never from state carried between epochs, so a run
resumed from an epoch checkpoint sees exactly the batches and augmentations the uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from asd_se.core.ava import POSITIVE_CODE
from asd_se.training.features import SplitFeatures
from data_prep.store import TrackMeta, TrackStore


@dataclass(frozen=True)
class Window:
    """``length`` frames of a track from ``start``."""

    track: int
    start: int
    length: int


def epoch_rng(seed: int, epoch: int, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, rank])


def make_batches(metas: list[TrackMeta], frame_budget: int, max_frames: int, min_frames: int,
                 rng: np.random.Generator) -> list[list[Window]]:
    """Cut tracks into windows of at most ``max_frames``, group windows of similar length into batches of
    about ``frame_budget`` frames (all windows of a batch trimmed to its shortest), in shuffled order."""
    windows = []
    for index, meta in enumerate(metas):
        if meta.frames < min_frames:
            continue
        pieces = int(np.ceil(meta.frames / max_frames))
        length = min(max_frames, meta.frames)
        starts = np.linspace(0, meta.frames - length, pieces) + rng.integers(-length // 4, length // 4 + 1, pieces)
        windows += [Window(index, int(s), length) for s in np.clip(starts, 0, meta.frames - length)]
    windows.sort(key=lambda w: (w.length, rng.random()))
    batches, current = [], []
    for window in windows:
        if current and (len(current) + 1) * current[0].length > frame_budget:
            batches.append(current)
            current = []
        current.append(window)
    if current:
        batches.append(current)
    batches = [[Window(w.track, w.start, b[0].length) for w in b] for b in batches]
    return [batches[i] for i in rng.permutation(len(batches))]


def window_labels(meta: TrackMeta, window: Window) -> np.ndarray:
    """``(L,)`` bool: which frames of ``window`` are speaking (the training target)."""
    return np.array(meta.labels[window.start:window.start + window.length]) == POSITIVE_CODE


@dataclass(frozen=True)
class LiveWindows:
    """Windows trained as ``asd-se live`` decides: a frame with at most its lookahead after it and the window
    before it as context. With probability ``share`` a window's loss counts only on its frames with at most
    ``future`` frames after them; the others stay in it unlabelled (NaN), as context. ``share`` 0 draws nothing."""

    share: float = 0.0
    future: int = 50

    def targets(self, speaking: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``speaking`` ``(L,)`` bool -> the window's targets ``(L,)`` float32 (1, 0, or NaN: no loss)."""
        targets = speaking.astype(np.float32)
        if self.share and rng.random() < self.share:
            targets[:max(0, len(targets) - 1 - self.future)] = np.nan
        return targets


def augment_faces(faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same flip, crop-and-scale and small rotation applied to every frame ``(T, S, S)`` of a window."""
    size = faces.shape[-1]
    scale = 1.0 / rng.uniform(0.8, 1.0)
    angle = rng.uniform(-10, 10)
    shift = rng.uniform(-0.08, 0.08, 2) * size
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += shift
    flip = rng.random() < 0.5
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        warped = cv2.warpAffine(face, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out[i] = warped[:, ::-1] if flip else warped
    return out


def augment_audio(audio: np.ndarray, other: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """White noise at 5-30 dB SNR (half the time) and, given ``other``, another track's audio mixed in quietly."""
    out = audio.copy()
    power = float(np.mean(audio ** 2)) + 1e-8
    if rng.random() < 0.5:
        out += rng.normal(0, np.sqrt(power / 10 ** (rng.uniform(5, 30) / 10)), len(audio)).astype(np.float32)
    if other is not None:
        out += other[: len(out)] * rng.uniform(0.05, 0.3)
    return out


class BatchDataset(Dataset):
    """Item ``i`` is batch ``i``: faces ``(B, T, S, S)`` uint8, audio ``(B, 640·T)`` float32, labels ``(B, T)``
    (``LiveWindows.targets``)."""

    def __init__(self, store: TrackStore, metas: list[TrackMeta], batches: list[list[Window]], augment: bool,
                 seed: int, epoch: int, rank: int = 0, live: LiveWindows = LiveWindows()):
        self.store, self.metas, self.batches = store, metas, batches
        self.augment, self.seed, self.epoch, self.rank, self.live = augment, seed, epoch, rank, live

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, index])
        faces, audio, labels = [], [], []
        loaded = [self.store.load(self.metas[w.track], w.start, w.length) for w in self.batches[index]]
        for i, (window, (clip_faces, clip_audio)) in enumerate(zip(self.batches[index], loaded)):
            if self.augment:
                clip_faces = augment_faces(clip_faces, rng)
                other = loaded[(i + 1) % len(loaded)][1] if len(loaded) > 1 and rng.random() < 0.3 else None
                clip_audio = augment_audio(clip_audio, other, rng)
            faces.append(clip_faces)
            audio.append(clip_audio)
            labels.append(self.live.targets(window_labels(self.metas[window.track], window), rng))
        return torch.from_numpy(np.stack(faces)), torch.from_numpy(np.stack(audio)), torch.from_numpy(np.stack(labels))


class FeatureBatchDataset(Dataset):
    """``train.freeze: encoders``: item ``i`` is batch ``i`` from the frozen encoders' features (``features.py``):
    pooled maps ``(B, C, T, 2)``, audio embeddings ``(B, T, D)`` float32 and labels ``(B, T)`` (as BatchDataset's). With
    ``voice_swap`` a window is heard, at that rate, with another video's audio embedding, every frame of it then
    not speaking: a voice from another recording is never the face's own (the frames cannot be augmented here;
    the encoders saw each frame once, as they see it when scoring)."""

    def __init__(self, features: SplitFeatures, batches: list[list[Window]], voice_swap: float, seed: int,
                 epoch: int, rank: int = 0, live: LiveWindows = LiveWindows()):
        self.features, self.batches, self.voice_swap = features, batches, voice_swap
        self.seed, self.epoch, self.rank, self.live = seed, epoch, rank, live

    def __len__(self) -> int:
        return len(self.batches)

    def _other_voice(self, window: Window, rng: np.random.Generator) -> np.ndarray | None:
        """A ``window.length`` piece of the audio embedding of a track of another video (None: none found)."""
        metas = self.features.metas
        for track in rng.integers(0, len(metas), 8):
            meta = metas[track]
            if meta.frames >= window.length and meta.video_id != metas[window.track].video_id:
                start = int(rng.integers(0, meta.frames - window.length + 1))
                return self.features.window(int(track), start, window.length)[1]
        return None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, index])
        pooled, sound, labels = [], [], []
        for window in self.batches[index]:
            seen, heard = self.features.window(window.track, window.start, window.length)
            speaking = window_labels(self.features.metas[window.track], window)
            other = self._other_voice(window, rng) if rng.random() < self.voice_swap else None
            if other is not None:
                heard, speaking = other, np.zeros_like(speaking)
            pooled.append(seen)
            sound.append(heard)
            labels.append(self.live.targets(speaking, rng))
        return torch.from_numpy(np.stack(pooled)), torch.from_numpy(np.stack(sound)), torch.from_numpy(np.stack(labels))
