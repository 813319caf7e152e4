"""Turning per-frame detections into face tracks: IoU matching, gap filling, minimum length, smoothing, cuts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asd_se.core.boxes import interpolate_boxes, iou
from asd_se.faces.detect import Detection


@dataclass
class FaceTrack:
    """A face over consecutive frames: ``frames (N,)`` and one box ``(N, 4)`` per frame, gaps filled."""

    track_id: int
    frames: np.ndarray
    boxes: np.ndarray


@dataclass(eq=False)
class _Open:
    """A track still being built. Compared by identity: two open tracks are never "equal" because their
    boxes happen to be, and comparing lists of arrays by value is ambiguous anyway."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    serial: int = 0  # the order it was opened in: its name while it is open (live); finished tracks are renumbered


class IouTracker:
    """Greedy IoU tracker. Feed detections frame by frame (every frame or every K-th), call ``cut()`` at shot
    cuts, and ``finish()`` for tracks with every frame filled by linear interpolation and smoothed boxes."""

    def __init__(self, min_iou: float = 0.3, max_gap: int = 10, min_length: int = 10, smooth: int = 5):
        self.min_iou, self.max_gap, self.min_length, self.smooth = min_iou, max_gap, min_length, smooth
        self._open: list[_Open] = []
        self._closed: list[_Open] = []
        self._opened = 0

    def update(self, frame: int, detections: list[Detection]) -> None:
        """Match this frame's detections to the open tracks; unmatched detections start new tracks."""
        self._close_stale(frame)
        boxes = np.array([d.box for d in detections], np.float64).reshape(-1, 4)
        unmatched = set(range(len(boxes)))
        if self._open and len(boxes):
            overlaps = iou(np.array([t.boxes[-1] for t in self._open]), boxes)
            for flat in np.argsort(-overlaps, axis=None):
                track, det = np.unravel_index(flat, overlaps.shape)
                if overlaps[track, det] < self.min_iou:
                    break
                if det in unmatched and self._open[track].frames[-1] != frame:
                    self._open[track].frames.append(frame)
                    self._open[track].boxes.append(boxes[det])
                    unmatched.discard(det)
        for det in sorted(unmatched):
            self._open.append(_Open([frame], [boxes[det]], self._opened))
            self._opened += 1

    def open_tracks(self) -> list[tuple[int, list[int], list[np.ndarray]]]:
        """The tracks still open, as ``(serial, frames detected, their boxes (4,))`` — what a live caller places
        its faces by (``forget_before`` bounds how far back they go)."""
        return [(t.serial, t.frames, t.boxes) for t in self._open]

    def forget_before(self, frame: int) -> None:
        """A live caller has taken the open tracks' detections before ``frame``: drop them but the last of each
        track (its place until the next; a later frame's detection, already in, may follow it)."""
        for track in self._open:
            keep = max(0, int(np.searchsorted(track.frames, frame)) - 1)
            del track.frames[:keep], track.boxes[:keep]

    def forget_closed(self) -> None:
        """Drop the closed tracks (a live caller has already used them; ``finish`` will not return them), so a
        tracker fed for hours keeps only what is open."""
        self._closed = []

    def cut(self) -> None:
        """A shot cut: no track continues across it."""
        self._closed += self._open
        self._open = []

    def _close_stale(self, frame: int) -> None:
        self._closed += [t for t in self._open if frame - t.frames[-1] > self.max_gap]
        self._open = [t for t in self._open if frame - t.frames[-1] <= self.max_gap]

    def finish(self) -> list[FaceTrack]:
        """All tracks spanning at least ``min_length`` frames, in order of first frame."""
        self.cut()
        tracks = []
        for raw in sorted(self._closed, key=lambda t: t.frames[0]):
            known = np.array(raw.frames)
            if known[-1] - known[0] + 1 < self.min_length:
                continue
            frames = np.arange(known[0], known[-1] + 1)
            boxes = interpolate_boxes(frames, known, np.array(raw.boxes))
            tracks.append(FaceTrack(len(tracks), frames, self._smoothed(boxes)))
        return tracks

    def _smoothed(self, boxes: np.ndarray) -> np.ndarray:
        """Centred moving average over ``smooth`` frames (edges use the frames available)."""
        if self.smooth <= 1 or len(boxes) < 2:
            return boxes
        kernel = np.ones(self.smooth)
        counts = np.convolve(np.ones(len(boxes)), kernel, mode="same")
        return np.stack([np.convolve(boxes[:, j], kernel, mode="same") / counts for j in range(4)], axis=1)
