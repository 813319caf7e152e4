"""Decisions leave a live run in frame order: a frame goes out once every face on it has its sample decided, as
one JSON line (the render document's per-face record, its map 8-bit) and, where asked, drawn (render's drawing)
into the fragmented MP4 and the served page. Events (start, degradation, drops, resolution changes, the end) go
into the same stream, in order.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, TextIO

import numpy as np

from asd_se.core.fsio import stream_errors
from asd_se.live.faces import FrameFaces, LiveTrack
from asd_se.review.document import encode_maps
from asd_se.review.truth import DECISION
from asd_se.video.draw import FaceDrawing, draw_face
from asd_se.video.record import face_record

Sink = Callable[[FrameFaces, dict, list[FaceDrawing]], None]  # gets each frame, its record and its faces drawn


@dataclass
class Latency:
    """Seconds from each frame's arrival to its decision."""

    seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict:
        if not self.seconds:
            return {"frames": 0}
        values = np.array(self.seconds) * 1000.0
        return {"frames": len(values), "p50_ms": round(float(np.percentile(values, 50)), 1),
                "p95_ms": round(float(np.percentile(values, 95)), 1), "max_ms": round(float(values.max()), 1)}


class Emitter:
    """Frames wait here (``push``) until ``flush`` finds their decisions; ``event`` writes a line at once."""

    def __init__(self, stream: TextIO | None, crop: str, se_informative: bool, sinks: list[Sink] = (),
                 alpha: float = 0.45, name: str = "the JSON lines"):
        self.stream, self.crop, self.se_informative, self.sinks = stream, crop, se_informative, list(sinks)
        self.alpha, self.name = alpha, name
        self.waiting: deque[FrameFaces] = deque()
        self.latency = Latency()
        self.emitted = 0

    def _write(self, record: dict) -> None:
        if self.stream is not None:
            with stream_errors(self.name, self.stream):
                self.stream.write(json.dumps(record, separators=(",", ":")) + "\n")
                self.stream.flush()

    def event(self, name: str, **fields) -> None:
        """An event line, written at once and passed to each sink that takes events (``sink.event(line)``)."""
        line = {"event": name, **fields}
        self._write(line)
        for sink in self.sinks:
            if hasattr(sink, "event"):
                sink.event(line)

    def push(self, frame: FrameFaces) -> None:
        self.waiting.append(frame)

    def flush(self) -> None:
        """Emit every leading frame whose faces are all decided."""
        while self.waiting and all(track.decided > self.waiting[0].sample for track, _ in self.waiting[0].faces):
            self._emit(self.waiting.popleft())

    def release(self, tracks: dict[int, LiveTrack]) -> list[LiveTrack]:
        """Trim every track's boxes and results to what the waiting frames (and the next one) can still show; take
        out of ``tracks`` (and return) the closed ones fully decided that no waiting frame shows."""
        oldest = self.waiting[0].sample if self.waiting else None
        shown = {track for frame in self.waiting for track, _ in frame.faces}
        gone = []
        for serial, track in list(tracks.items()):
            latest = track.decided - 1  # the next frame may show this sample again (a source above 25 fps)
            keep_from = latest if oldest is None else min(oldest, latest)
            track.boxes.trim(keep_from)
            track.results.trim(keep_from)
            if not track.open and track.decided >= track.end and track not in shown:
                gone.append(tracks.pop(serial))
        return gone

    def _emit(self, frame: FrameFaces) -> None:
        now = time.monotonic()
        faces, drawings = [], []
        for track, box in frame.faces:
            result = track.results.get(frame.sample)
            cut = track.boxes.get(frame.sample)
            record = face_record(frame.index, frame.time, box, cut, result.prob, result.score, frame.sample,
                                 result.peak, result.channels if self.se_informative else [], self.crop)
            del record["frame"], record["time"]
            record = {"track": track.serial, "name": track.name, **record, "speaking": result.prob >= DECISION}
            if result.heat is not None:
                record["map"] = encode_maps(result.heat.astype(np.float32))
            faces.append(record)
            drawings.append(FaceDrawing(box, result.prob, track.name, result.heat, self.crop, cut))
            if frame.image is not None:
                draw_face(frame.image, drawings[-1], self.alpha)
        latency = now - frame.arrived
        self.latency.seconds.append(latency)
        line = {"frame": frame.index, "time": round(frame.time, 4), "latency_ms": round(latency * 1000, 1),
                "faces": faces}
        self._write(line)
        for sink in self.sinks:
            sink(frame, line, drawings)
        self.emitted += 1
