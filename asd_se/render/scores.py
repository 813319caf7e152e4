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

from asd_se.explain import Explainer
from asd_se.explain.maps import peaks, upsample
from asd_se.faces.crop import CROP_SIZE, face_crop
from asd_se.inference import iter_windows
from asd_se.media import decode
from asd_se.models import ActiveSpeakerModel
from asd_se.progress import with_progress
from asd_se.render.scan import SourceScan
from asd_se.render.timing import StageTimer
from asd_se.render.tracks import RenderTrack
from asd_se.sampling import audio_segment, nearest_frames


class CropSpool:
    """``(S, S)`` uint8 crops of every track sample, in one temporary file unlinked from the start."""

    def __init__(self, counts: list[int], size: int = CROP_SIZE):
        self.size, self.counts = size, counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._file = tempfile.TemporaryFile(prefix="asd-se-crops-")

    def write(self, track: int, sample: int, crop: np.ndarray) -> None:
        os.pwrite(self._file.fileno(), np.ascontiguousarray(crop, np.uint8).tobytes(),
                  int(self.offsets[track] + sample) * self.size * self.size)

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
              progress: bool = True) -> None:
    """Decode the input again and cut each sample's crop from the frame nearest its time (THE crop)."""
    sample_times = np.concatenate([t.sample_times for t in tracks])
    owners = np.concatenate([np.stack([np.full(len(t.sample_times), i), np.arange(len(t.sample_times))], 1)
                             for i, t in enumerate(tracks)])
    stream = timer.iterate("decode", decode(source.path, ("gray",), with_audio=False))
    frames = with_progress(nearest_frames(sample_times, stream, tail=1.0 / source.fps), "cutting faces", "frame",
                           total=len(source.frame_times), enabled=progress)
    for _, (gray,), samples in frames:
        with timer.stage("crop"):
            for track, k in owners[samples]:
                spool.write(track, k, face_crop(gray, tuple(tracks[track].sample_boxes[k]), spool.size)[0])


@dataclass
class TrackResult:
    """Per 25 fps sample of a track: speaking probability ``probs (T,)``, the explanation ``maps (T, h, w)``
    in [0, 1] at feature resolution, its peak on the crop ``peaks (T, 2)`` (x, y as fractions of the crop),
    and ``channels`` — per sample, the SE-selected channels, highest SE value first. ``maps`` is None for
    a model without an SE block."""

    probs: np.ndarray
    maps: np.ndarray | None
    peaks: np.ndarray
    channels: list[list[int]]


def score_tracks(model: ActiveSpeakerModel, tracks: list[RenderTrack], spool: CropSpool, audio: np.ndarray,
                 device: torch.device, timer: StageTimer, explainer: Explainer | None = None,
                 progress: bool = True) -> list[TrackResult]:
    """Score and explain every track window by window (the windows ``evaluate`` uses): the explainer gives
    probabilities and maps from its own forward pass; without one, only scores are made."""
    results = []
    for index, track in enumerate(with_progress(tracks, "scoring faces", "track", enabled=progress)):
        count = len(track.sample_times)
        probs, peak_xy = np.zeros(count, np.float32), np.zeros((count, 2), np.float32)
        maps: np.ndarray | None = None
        channels: list[list[int]] = [[] for _ in range(count)]
        faces, sound = _TrackCrops(spool, index), audio_segment(audio, float(track.sample_times[0]), count)
        for frames, inside, clip, clip_sound in iter_windows(faces, sound, device):
            if explainer is None:
                with timer.stage("model"), torch.no_grad():
                    probs[frames] = torch.sigmoid(model(clip, clip_sound).logits[0, inside].float()).cpu().numpy()
                continue
            explanation = explainer(model, clip, clip_sound)
            map_stage = "se_maps" if explainer.name == "se" else f"{explainer.name}_maps"
            timer.seconds["model"] += explanation.forward_seconds
            timer.seconds[map_stage] += explanation.explain_seconds
            with timer.stage(map_stage):
                probs[frames] = explanation.probs[inside].cpu().numpy()
                low = explanation.maps[inside]
                maps = np.zeros((count, *low.shape[1:]), np.float16) if maps is None else maps
                maps[frames] = low.cpu().numpy()
                # located on a half-resolution grid: within one crop pixel, at a quarter of the cost
                peak_xy[frames] = peaks(upsample(low, spool.size // 2)).cpu().numpy()
                if explanation.channels is not None:
                    channels[frames] = explanation.channels[inside]
        results.append(TrackResult(probs, maps, peak_xy, channels))
    return results
