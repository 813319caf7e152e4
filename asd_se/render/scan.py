"""Render pass 1: one decode of the input for frame times, audio and (in detection mode) the faces."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from asd_se.core.media import DecodedVideo, FrameConverter, MonoAudio, demux, probe

from asd_se.core.errors import MediaError
from asd_se.core.progress import Progress
from asd_se.core.timing import StageTimer
from asd_se.faces.pool import DetectionPool
from asd_se.faces.shots import THUMB_SIZE
from asd_se.video.tracks import FaceFinder


@dataclass
class SourceScan:
    """What render needs to know about its input: every frame's time ``(N,)`` s, the audio (16 kHz mono),
    the stream facts the output copies, and the warnings met while decoding."""

    path: Path
    width: int
    height: int
    fps: float
    time_base: Fraction
    frame_times: np.ndarray
    audio: np.ndarray
    audio_rate: int | None
    audio_channels: int
    warnings: list[str] = field(default_factory=list)
    audio_stream: int = 0  # which of the file's audio streams (``choose_audio_stream``)

    @property
    def has_audio(self) -> bool:
        return self.audio_rate is not None

    @property
    def duration(self) -> float:
        """From the first frame to the end of the last one."""
        step = 1.0 / self.fps if self.fps > 0 else 0.04
        return float(self.frame_times[-1] + step) if len(self.frame_times) else 0.0


def scan(path: Path, finder: FaceFinder | None, timer: StageTimer, progress: bool = True,
         detect_workers: int = 2, audio_stream: int = 0) -> SourceScan:
    """Decode ``path`` once: frame times, the audio of its ``audio_stream``-th audio stream, and each frame shown
    to ``finder`` (None: no detection), at the first frame's size (a picture that changes size is scaled to it,
    with a note). Detection runs in ``detect_workers`` processes beside the decoding; results reach the tracker
    in order."""
    info = probe(path, audio_stream)
    size = (info.width, info.height)
    decoded, audio, convert, times = DecodedVideo(), MonoAudio(), FrameConverter(size), []
    stored, resized = None, []
    estimate = int(info.duration * info.fps) or None
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(DetectionPool(finder.detector, detect_workers)) if finder else None
        bar = stack.enter_context(Progress("scanning faces" if finder else "scanning", "frame", estimate,
                                                progress))
        frames = demux(path, with_audio=info.audio_rate is not None, result=decoded, audio_stream=audio_stream)
        for frame in timer.iterate("decode", frames):
            if isinstance(frame, av.AudioFrame):
                decoded.audio_time(frame)
                audio.add(frame, decoded.audio_origin)
                continue
            index = len(times)
            times.append(decoded.frame_time(frame))
            stored = stored or (frame.width, frame.height)
            if (frame.width, frame.height) != stored and not resized:
                resized.append(f"{path}: the picture changes size at {times[-1]:.2f} s ({stored[0]}x{stored[1]} -> "
                               f"{frame.width}x{frame.height}); every frame is scaled to {size[0]}x{size[1]}")
            bar.update()
            if finder is None:
                continue
            with timer.stage("track"):
                detect_here = finder.needs_detection(index, convert(frame, "gray", *THUMB_SIZE, interpolation="AREA"))
            if detect_here:
                with timer.stage("detect"):  # scaling and handing over; the CNN runs in the pool
                    images = [convert(frame, "rgb24", *scaled, interpolation="AREA")
                              for scaled in finder.detector.input_sizes(*size)]
                    pool.submit(index, images, size)
            with timer.stage("track"):
                for key, detections in pool.ready():
                    finder.track(key, detections, info.fps)
        if pool is not None:
            for key, detections in timer.iterate("detect", pool.drain()):
                with timer.stage("track"):
                    finder.track(key, detections, info.fps)
    if not times:
        raise MediaError(f"{path}: no decodable video frames")
    notes = [info.rotation_note] if info.rotation_note else []
    return SourceScan(Path(path), info.width, info.height, info.fps, info.time_base, np.array(times),
                      audio.finish(), info.audio_rate, info.audio_channels, notes + decoded.warnings + resized,
                      audio_stream)
