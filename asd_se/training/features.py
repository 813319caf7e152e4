"""Frozen-encoder features of a track store, for training the SE block and everything after it
(``train.freeze: encoders``) without running the encoders again.

Per face-frame the decision reads only ``pool``'s spatial mean and max of each channel of the explained layer
(``TwoStreamModel.pool``) and the audio embedding, so with the encoders frozen a track's features are
``pooled (T, C, 2)`` and ``sound (T, D)``: 384 floats a frame for Light-ASD / LR-ASD instead of 25,088. They are
computed once through THE scoring engine's windows (``scoring.iter_windows``: the same encoder inputs that
``evaluate`` and ``render`` give the model) and kept in ``CACHE/<key>/``, ``key`` a hash of the encoders'
weights and the tracks, so a second run (another seed, no SE block) reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from asd_se.core.ava import Prediction
from asd_se.core.progress import with_progress
from asd_se.scoring.engine import WINDOW_FRAMES, iter_windows, windows
from asd_se.training.evaluate import track_predictions
from data_prep.store import TrackMeta, TrackStore

log = logging.getLogger(__name__)

FEATURES_VERSION = 1
FROZEN = ("frontend.", "visual.", "audio.")  # the model parts `train.freeze: encoders` keeps as they are


@dataclass
class SplitFeatures:
    """The frozen encoders' features of ``metas``' frames, tracks one after another: track ``i`` is rows
    ``offsets[i]:offsets[i + 1]`` of ``pooled (N, C, 2)`` and ``sound (N, D)`` float32."""

    metas: list[TrackMeta]
    offsets: np.ndarray
    pooled: np.ndarray
    sound: np.ndarray

    def window(self, track: int, start: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``[start, start + length)`` of track ``track``: pooled ``(C, L, 2)`` and sound ``(L, D)``."""
        first = int(self.offsets[track]) + start
        return self.pooled[first:first + length].transpose(1, 0, 2), self.sound[first:first + length]


def frozen_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for name, p in model.named_parameters() if name.startswith(FROZEN)]


def features_key(model: torch.nn.Module, metas: list[TrackMeta]) -> str:
    """A hash of everything the features depend on: the frozen parts' weights and buffers, the tracks (file,
    member, frame count) and the window length."""
    digest = hashlib.sha256(f"{FEATURES_VERSION} {WINDOW_FRAMES}".encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(FROZEN):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for meta in metas:
        digest.update(f"{meta.file} {meta.member} {meta.frames}\n".encode())
    return digest.hexdigest()[:24]


@torch.no_grad()
def track_features(model: torch.nn.Module, faces: np.ndarray, audio: np.ndarray, device: torch.device
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A track's faces ``(T, S, S)`` uint8 + audio ``(640·T,)`` -> pooled ``(T, C, 2)`` and sound ``(T, D)``, each
    frame from the window the scoring engine decides it in."""
    model.eval()
    pooled = sound = None
    for frames, inside, clip, window_audio in iter_windows(faces, audio, device, WINDOW_FRAMES, model.audio_context):
        part = model.pool(model.visual_maps(clip))[0].transpose(0, 1)[inside]  # (L, C, 2)
        heard = model.sound(window_audio, clip.shape[1])[0][inside]  # (L, D)
        if pooled is None:
            pooled = np.zeros((len(faces), *part.shape[1:]), np.float32)
            sound = np.zeros((len(faces), heard.shape[1]), np.float32)
        pooled[frames], sound[frames] = part.float().cpu().numpy(), heard.float().cpu().numpy()
    return pooled, sound


def load_features(model: torch.nn.Module, store: TrackStore, metas: list[TrackMeta], cache: Path,
                  device: torch.device, progress: bool = True) -> SplitFeatures:
    """``metas``' features from ``cache`` where a run with the same encoders stored them, else computed (a
    progress bar per track) and stored there atomically (a killed run leaves no half cache)."""
    folder = Path(cache) / features_key(model, metas)
    offsets = np.concatenate([[0], np.cumsum([m.frames for m in metas])]).astype(np.int64)
    if (folder / "done.json").is_file():
        log.info("frozen-encoder features of %d tracks from %s", len(metas), folder)
        return SplitFeatures(metas, offsets, np.load(folder / "pooled.npy"), np.load(folder / "sound.npy"))
    pooled, sound = [], []
    for meta in with_progress(metas, "encoding (frozen encoders)", "track", enabled=progress):
        faces, audio = store.load(meta)
        part, heard = track_features(model, faces, audio, device)
        pooled.append(part)
        sound.append(heard)
    features = SplitFeatures(metas, offsets, np.concatenate(pooled), np.concatenate(sound))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        np.save(staging / "pooled.npy", features.pooled)
        np.save(staging / "sound.npy", features.sound)
        (staging / "done.json").write_text(json.dumps({"tracks": len(metas), "frames": int(offsets[-1]),
                                                       "version": FEATURES_VERSION}))
        staging.rename(folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "done.json").is_file():  # another run may have stored the same features meanwhile
            raise
    return features


def decide_track(model: torch.nn.Module, features: SplitFeatures, track: int,
                 spans: list[tuple[int, int, int, int]] | None = None) -> np.ndarray:
    """The heads of track ``track`` from its features, window by window as ``scoring.score_track`` decides them
    (or in ``spans``, ``scoring.windows``' format: e.g. ``scoring.live_windows``): ``(3, T)`` probabilities of the
    audio-visual, audio-only and visual-only heads. Windows alike (length, kept frames) go as one batch."""
    frames = features.metas[track].frames
    probs = np.zeros((3, frames), np.float32)
    groups: dict[tuple[int, int, int], list[int]] = {}
    for start, end, keep_start, keep_end in spans or windows(frames, WINDOW_FRAMES):
        groups.setdefault((end - start, keep_start - start, keep_end - start), []).append(start)
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        for (length, keep_from, keep_to), starts in groups.items():
            parts = [features.window(track, start, length) for start in starts]
            output = model.decide_pooled(torch.from_numpy(np.stack([seen for seen, _ in parts])).to(device),
                                         torch.from_numpy(np.stack([heard for _, heard in parts])).to(device))
            heads = torch.stack([output.logits, output.audio_logits, output.visual_logits], 1).float()
            decided = torch.sigmoid(heads[:, :, keep_from:keep_to]).cpu().numpy()  # (B, 3, kept)
            for start, values in zip(starts, decided):
                probs[:, start + keep_from:start + keep_to] = values
    return probs


def predict_features(model: torch.nn.Module, features: SplitFeatures,
                     spans: Callable[[int], list[tuple[int, int, int, int]]] | None = None) -> list[Prediction]:
    """Every annotation row of ``features``' tracks with its frame's probabilities (``evaluate.predict_split``'s
    rows, from the features); ``spans(frames)``: the windows a track is decided in (``decide_track``)."""
    return [row for i, meta in enumerate(features.metas)
            for row in track_predictions(meta, *decide_track(model, features, i, spans and spans(meta.frames)))]
