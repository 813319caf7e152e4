"""Render pass 2 and the model: cut every track's 25 fps face crops, score them, explain them (SE maps).

Crops wait in one unlinked temporary file between the cut and the model, so memory stays flat however long
the video, and nothing is left on disk even if the process is killed.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import torch

from asd_se.core.crop import CROP_SIZE, face_crop
from asd_se.core.errors import OutputError
from asd_se.core.media import decode
from asd_se.core.progress import with_progress
from asd_se.core.sampling import audio_segment, nearest_frames
from asd_se.core.timing import StageTimer
from asd_se.explain import Explainer
from asd_se.models import AsdModel
from asd_se.render.scan import SourceScan
from asd_se.scoring.engine import score_track
from asd_se.video.explainers import map_peaks
from asd_se.video.tracks import RenderTrack


class CropSpool:
    """``(S, S)`` uint8 crops of every track sample, in one temporary file unlinked from the start."""

    def __init__(self, counts: list[int], size: int = CROP_SIZE):
        self.size, self.counts = size, counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._file = tempfile.TemporaryFile(prefix="asd-se-crops-")

    def write(self, track: int, sample: int, crop: np.ndarray) -> None:
        try:
            os.pwrite(self._file.fileno(), np.ascontiguousarray(crop, np.uint8).tobytes(),
                      int(self.offsets[track] + sample) * self.size * self.size)
        except OSError as err:
            raise OutputError(f"{tempfile.gettempdir()}: cannot be written (the face crops' scratch file, "
                              f"{self.offsets[-1] * self.size ** 2 / 1e6:.0f} MB: {err.strerror}); give TMPDIR a "
                              f"folder with room") from err

    def read(self, track: int, start: int, stop: int) -> np.ndarray:
        """Crops ``(stop - start, S, S)`` of one track (samples never written read as zeros)."""
        count = stop - start
        data = os.pread(self._file.fileno(), count * self.size * self.size,
                        int(self.offsets[track] + start) * self.size * self.size)
        crops = np.zeros(count * self.size * self.size, np.uint8)
        crops[:len(data)] = np.frombuffer(data, np.uint8)
        return crops.reshape(count, self.size, self.size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "CropSpool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _TrackCrops:
    """A track's crops as the sliceable ``(T, S, S)`` sequence ``iter_windows`` reads window by window."""

    def __init__(self, spool: CropSpool, track: int):
        self.spool, self.track = spool, track

    def __len__(self) -> int:
        return self.spool.counts[self.track]

    def __getitem__(self, window: slice) -> np.ndarray:
        start, stop, _ = window.indices(len(self))
        return self.spool.read(self.track, start, stop)


def cut_crops(source: SourceScan, tracks: list[RenderTrack], spool: CropSpool, timer: StageTimer,
              crop: str = "asd-se", progress: bool = True) -> None:
    """Decode the input again and cut each sample's crop from the frame nearest its time (THE crop, in the
    checkpoint's ``crop`` style)."""
    boxes = [t.crop_boxes(crop) for t in tracks]
    sample_times = np.concatenate([t.sample_times for t in tracks])
    owners = np.concatenate([np.stack([np.full(len(t.sample_times), i), np.arange(len(t.sample_times))], 1)
                             for i, t in enumerate(tracks)])
    stream = timer.iterate("decode", decode(source.path, ("gray",), with_audio=False,
                                            size=(source.width, source.height)))
    frames = with_progress(nearest_frames(sample_times, stream, tail=1.0 / source.fps), "cutting faces", "frame",
                           total=len(source.frame_times), enabled=progress)
    for _, (gray,), samples in frames:
        with timer.stage("crop"):
            for track, k in owners[samples]:
                spool.write(track, k, face_crop(gray, tuple(boxes[track][k]), spool.size, style=crop)[0])


@dataclass
class TrackResult:
    """Per 25 fps sample of a track: speaking probability ``probs (T,)`` and the model's reported score
    ``scores (T,)``, the explanation ``maps (T, h, w)`` in [0, 1] at feature resolution, its peak on the crop
    ``peaks (T, 2)`` (x, y as fractions of the crop; NaN where the map is all zero: no map), and ``channels``
    — per sample, the SE-selected channels, highest SE value first. ``maps`` is None when no explainer ran."""

    probs: np.ndarray
    scores: np.ndarray
    maps: np.ndarray | None
    peaks: np.ndarray
    channels: list[list[int]]


def same_channels_everywhere(results: list[TrackResult]) -> list[int] | None:
    """The SE-selected channels when every sample of every track selected the same ones although the decisions
    differ (some samples speaking, p ≥ 0.5, some not): then the SE vector does not rank channels by what the face
    shows: its map shows where one fixed set of channels fires. None otherwise (no channels reported,
    the selections differ, or every decision is the same)."""
    selections = {frozenset(chosen) for result in results for chosen in result.channels}
    probs = np.concatenate([result.probs for result in results]) if results else np.zeros(0)
    if len(selections) != 1 or not next(iter(selections)) or probs.min() >= 0.5 or probs.max() < 0.5:
        return None
    return next(chosen for result in results for chosen in result.channels)


def score_tracks(model: AsdModel, tracks: list[RenderTrack], spool: CropSpool, audio: np.ndarray,
                 device: torch.device, timer: StageTimer, explainer: Explainer | None = None,
                 durations: tuple[float, ...] = (), progress: bool = True) -> list[TrackResult]:
    """Score (and explain, given an explainer) every track through the scoring engine ``evaluate`` uses."""
    results = []
    for index, track in enumerate(with_progress(tracks, "scoring faces", "track", enabled=progress)):
        count = len(track.sample_times)
        sound = audio_segment(audio, float(track.sample_times[0]), count)
        scores = score_track(model, _TrackCrops(spool, index), sound, device, [explainer] if explainer else [],
                             timer=timer, durations=durations)
        maps = scores.maps.get(explainer.name) if explainer else None
        with timer.stage(f"{explainer.name}_maps" if explainer else "model"):
            located = map_peaks(maps, spool.size) if maps is not None else np.zeros((count, 2), np.float32)
        results.append(TrackResult(scores.probs, scores.scores, maps, located, scores.channels))
    return results
