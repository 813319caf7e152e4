"""Who speaks when: per-frame speaking probabilities -> speaking segments, and their RTTM / CSV / JSON files.

A track's probabilities are binarised with hysteresis (a segment starts where the probability reaches ``on``
and lasts until it falls below ``off``), gaps shorter than ``min_gap`` inside a track are filled, and segments
shorter than ``min_speech`` are dropped — in that order, as pyannote's ``Binarize`` does.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass

import numpy as np

from asd_se.core.errors import ConfigError
from asd_se.core.options import FRACTION, NOT_NEGATIVE, check_settings, setting
from asd_se.review.document import RenderDocument

SEGMENT_FORMATS = ("rttm", "csv", "json")


@dataclass(frozen=True)
class SegmentSettings:
    """How frame probabilities become speaking segments."""

    on: float = setting(0.6, "a speaking segment starts where the probability reaches this", range=FRACTION)
    off: float = setting(0.4, "and lasts until the probability falls below this", range=FRACTION)
    min_gap: float = setting(0.3, "fill pauses shorter than this many seconds inside a track's segment",
                             range=NOT_NEGATIVE)
    min_speech: float = setting(0.2, "drop segments shorter than this many seconds (after filling pauses)",
                                range=NOT_NEGATIVE)

    def __post_init__(self) -> None:
        check_settings(self, "segments ")
        if self.off > self.on:
            raise ConfigError(f"segment thresholds need 0 <= off <= on <= 1, got on={self.on}, off={self.off}")


@dataclass(frozen=True)
class Segment:
    """One track speaking from ``start`` to ``end`` (seconds); ``mean_prob`` over its frames."""

    track: str
    start: float
    end: float
    mean_prob: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def hysteresis(probs: np.ndarray, on: float, off: float) -> np.ndarray:
    """``(N,)`` bool: speaking where a run that reached ``on`` has not yet fallen below ``off``."""
    state, active = False, np.zeros(len(probs), bool)
    for i, p in enumerate(probs):
        state = p >= off if state else p >= on
        active[i] = state
    return active


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, last + 1), ...]`` of the True runs of ``active (N,)``."""
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def track_segments(name: str, times: np.ndarray, probs: np.ndarray, frame_s: float,
                   settings: SegmentSettings = SegmentSettings()) -> list[Segment]:
    """Segments of one track from its frames' ``times (N,)`` s (increasing) and ``probs (N,)``; a frame lasts
    ``frame_s`` seconds, so a segment ends one frame after its last frame's time."""
    if not len(times):
        return []
    runs = _runs(hysteresis(np.asarray(probs, np.float64), settings.on, settings.off))
    merged: list[list[int]] = []
    for first, stop in runs:
        if merged and times[first] - (times[merged[-1][1] - 1] + frame_s) < settings.min_gap - 1e-9:
            merged[-1][1] = stop
        else:
            merged.append([first, stop])
    segments = [Segment(name, round(float(times[first]), 3), round(float(times[stop - 1] + frame_s), 3),
                        round(float(np.mean(probs[first:stop])), 4)) for first, stop in merged]
    return [s for s in segments if s.duration >= settings.min_speech - 1e-9]


def _field(text: str) -> str:
    return "_".join(text.split()) or "_"


def column(track: dict, key: str) -> np.ndarray:
    """``(N,)`` one value of every frame record of a render document's track."""
    return np.array([frame[key] for frame in track["frames"]], np.float64)


def track_name(track: dict) -> str:
    return str(track.get("name", track.get("track_id")))


def document_segments(document: RenderDocument, settings: SegmentSettings = SegmentSettings()) -> list[Segment]:
    """Every track's speaking segments in a render document."""
    return [segment for track in document.tracks for segment in
            track_segments(track_name(track), column(track, "time"), column(track, "prob"), 1.0 / document.fps,
                           settings)]


def to_rttm(segments: list[Segment], file_id: str) -> str:
    """The standard ten-field RTTM (as pyannote and the VoxConverse / AVA-AVD tools read it): ``SPEAKER file 1
    onset duration <NA> <NA> speaker <NA> <NA>``, one speaker per track, in time order. Fields are
    space-separated, so spaces in the file id or a track name become ``_``."""
    lines = [f"SPEAKER {_field(file_id)} 1 {s.start:.3f} {s.duration:.3f} <NA> <NA> {_field(s.track)} <NA> <NA>"
             for s in sorted(segments, key=lambda s: (s.start, s.track))]
    return "".join(line + "\n" for line in lines)


def to_csv(segments: list[Segment]) -> str:
    """``track,start,end,duration,mean_prob`` per segment, in time order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["track", "start", "end", "duration", "mean_prob"])
    for s in sorted(segments, key=lambda s: (s.start, s.track)):
        writer.writerow([s.track, f"{s.start:.3f}", f"{s.end:.3f}", f"{s.duration:.3f}", f"{s.mean_prob:.4f}"])
    return out.getvalue()


def to_json(segments: list[Segment], settings: SegmentSettings) -> str:
    """``{"settings": ..., "segments": [...]}`` in time order."""
    ordered = sorted(segments, key=lambda s: (s.start, s.track))
    return json.dumps({"settings": asdict(settings), "segments": [asdict(s) for s in ordered]}, indent=1) + "\n"


def format_segments(segments: list[Segment], kind: str, file_id: str, settings: SegmentSettings) -> str:
    """The segments as ``kind`` (one of ``SEGMENT_FORMATS``)."""
    if kind == "rttm":
        return to_rttm(segments, file_id)
    if kind == "csv":
        return to_csv(segments)
    if kind == "json":
        return to_json(segments, settings)
    raise ConfigError(f"segment format must be one of {', '.join(SEGMENT_FORMATS)}, not {kind!r}")
