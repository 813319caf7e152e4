"""Where ``asd-se live`` reads from: a file (as fast as it decodes, or at its own pace), a network stream PyAV opens
(``rtsp://``, ``http://``, ``udp://``, ...), a camera (``/dev/video0``, PyAV's v4l2 input) or ``-`` (a stream on
stdin). A reader thread demuxes and decodes into a bounded queue, stamping each frame with the moment it came off
the source; the consumer waits at most ``stall_s`` for the next one.
"""

from __future__ import annotations

import heapq
import logging
import queue
import re
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av

from asd_se.core.errors import Stalled
from asd_se.core.media import (DecodedVideo, MediaError, choose_audio_stream, decoded_packets, open_media,
                                select_streams)
from asd_se.core.signals import POLL_S, interruptible
from asd_se.live.pipe import TimedPipe, open_stdin

log = logging.getLogger(__name__)

NETWORK = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
REORDER_S = 2.0  # how far ahead a paced file is read to hand its streams over in time order


@dataclass
class Arrival:
    """One decoded frame and when it arrived (``time.monotonic()``); ``time`` s from the stream's start."""

    frame: av.VideoFrame | av.AudioFrame
    time: float
    arrived: float


@dataclass
class Ended:
    """The source has nothing more: ``reason`` says why; ``error`` where it ended in one (a stream that stops
    mid-frame, a broken connection)."""

    reason: str
    error: str | None = None


@dataclass(frozen=True)
class StreamInfo:
    """What the source says about itself once opened."""

    width: int
    height: int
    fps: float
    time_base: Fraction
    audio_rate: int | None
    audio_channels: int


def source_kind(spec: str) -> str:
    """``stdin`` (``-``), ``network`` (a URL), ``camera`` (``/dev/video*``) or ``file``."""
    if spec == "-":
        return "stdin"
    if NETWORK.match(spec):
        return "network"
    return "camera" if spec.startswith("/dev/video") else "file"


LIVE_PROBE = {"analyzeduration": "1000000"}  # µs of a stream read to learn its streams (FFmpeg's default: 5 s)


def _container(spec: str, kind: str, stall_s: float, stop: threading.Event
               ) -> tuple[av.container.InputContainer, bool]:
    """Open the source; whether it was read whole first (an MP4 on stdin indexed at its end, ``live/pipe.py``).
    MediaError naming it where it cannot be opened."""
    try:
        if kind == "file":
            return open_media(Path(spec)), False
        if kind == "stdin":
            opened = open_stdin(TimedPipe(sys.stdin.fileno(), stall_s, spec, stop))
            return av.open(opened.source, mode="r", options={} if opened.spooled else LIVE_PROBE), opened.spooled
        if kind == "camera":
            return av.open(spec, format="v4l2", timeout=stall_s), False
        return av.open(spec, timeout=(stall_s, stall_s), options=LIVE_PROBE), False
    except Stalled:
        raise
    except av.error.ExitError as err:
        raise Stalled(f"{spec}: nothing came from the source within {stall_s:g} s ({err})") from err
    except (av.error.FFmpegError, OSError) as err:
        raise MediaError(f"{spec}: cannot be opened as a video source ({err})") from err


class LiveSource:
    """Frames of ``spec`` as they arrive. ``realtime`` paces a file at its own timestamps (network, stdin and
    camera sources come at their own pace anyway). A file read as fast as it decodes waits for the consumer;
    any other source never waits for it: where the queue (``queue_s`` of video) is full, the newest video
    frame is dropped and counted in ``overflow`` (the pipeline's own degradation acts well before that)."""

    def __init__(self, spec: str, realtime: bool = False, stall_s: float = 10.0, queue_s: float = 4.0,
                 audio_stream: int | None = None):
        self.spec, self.kind, self.stall_s = spec, source_kind(spec), stall_s
        self._stop = threading.Event()
        self.notes: list[str] = []
        if self.kind == "file":  # a file can be listened to ahead: render's choice of its audio stream
            audio_stream, self.notes = choose_audio_stream(Path(spec), audio_stream)
        try:  # a signal ends the wait for a source that sends nothing at once
            self.container, whole = interruptible(lambda: _container(spec, self.kind, stall_s, self._stop))
        except BaseException:
            self._stop.set()  # the opening left behind reads the end of the stream and ends
            raise
        self.paced = realtime or (self.kind != "file" and not whole)
        if whole:
            self.notes.append(f"{spec}: an MP4 whose index comes after its media: read whole before the first "
                              f"decision, then decided as fast as it decodes")
        self.decoded = DecodedVideo()  # the clock (render's) and the problems met
        try:
            self._streams = select_streams(self.container, spec, True, self.decoded, audio_stream or 0)
        except MediaError:
            self.container.close()
            raise
        if len(self.container.streams.audio) > 1 and audio_stream is None:
            self.notes.append(f"{spec}: {len(self.container.streams.audio)} audio streams; listening to stream 0 "
                              f"(a stream cannot be listened to ahead); --audio-stream N chooses another")
        video, audio = self._streams[0], (self._streams[1] if len(self._streams) > 1 else None)
        if not video.codec_context.width or not video.codec_context.height:
            self.container.close()
            raise MediaError(f"{spec}: its video stream has no picture size: the stream ended (or sent nothing "
                             f"for {stall_s:g} s) before its first frame")
        context = audio.codec_context if audio is not None else None
        self.info = StreamInfo(video.codec_context.width, video.codec_context.height, self.decoded.fps,
                               video.time_base or Fraction(1, 90000),
                               (context.sample_rate or None) if context else None, context.channels if context else 0)
        self._queue: queue.Queue = queue.Queue(maxsize=max(8, int(queue_s * self.info.fps)) * 2)
        self.overflow = 0
        self._thread = threading.Thread(target=self._read, name="asd-se-live-source", daemon=True)

    @property
    def warnings(self) -> list[str]:
        """What was chosen (the audio stream) and met (jumps, corrupt packets), one sentence per cause."""
        return self.notes + self.decoded.warnings

    def start(self) -> None:
        """Begin reading (once the consumer is ready: a paced file's clock starts with its first frame)."""
        self._thread.start()

    def _put(self, item: Arrival | Ended) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.paced and isinstance(item, Arrival) and isinstance(item.frame, av.VideoFrame):
                    self.overflow += 1
                    return

    def _read(self) -> None:
        """The reader thread: demux + decode, pace where asked, hand over; always ends with an ``Ended``."""
        try:
            frames = self._decoded()
            for stamp, frame in (self._paced(frames) if self.paced and self.kind == "file" else frames):
                self._put(Arrival(frame, stamp, time.monotonic()))
            if not self._stop.is_set():
                self._put(Ended("end of stream"))
        except Stalled as stall:
            self._put(Ended("stalled", str(stall)))
        except av.error.ExitError as err:
            self._put(Ended("stalled", f"{self.spec}: no data for {self.stall_s:g} s ({err})"))
        except (av.error.FFmpegError, OSError) as err:
            self._put(Ended("error", f"{self.spec}: the stream ends in an error ({err})"))

    def _decoded(self) -> Iterator[tuple[float, av.VideoFrame | av.AudioFrame]]:
        """``(time s, frame)`` in the order the container holds them, timed by render's clock
        (``core/clock.py``: time only goes on, a jump or a repeat said once)."""
        clock = self.decoded.clock
        for frame in decoded_packets(self.container, self._streams, self.spec, self.decoded):
            if self._stop.is_set():
                return
            if isinstance(frame, av.VideoFrame):
                yield clock.time("video", frame.time), frame
            else:
                yield self.decoded.audio_time(frame), frame

    def _paced(self, frames: Iterator[tuple[float, av.VideoFrame | av.AudioFrame]]
               ) -> Iterator[tuple[float, av.VideoFrame | av.AudioFrame]]:
        """A file as if it were arriving: each frame handed over at its own time (wall clock from the first).
        Files interleave their streams loosely (audio a second behind its video is common), so frames are
        read ``REORDER_S`` ahead and released in time order, as a live sender would send them."""
        ahead: list[tuple[float, int, av.VideoFrame | av.AudioFrame]] = []
        wall0 = None
        for order, (stamp, frame) in enumerate(frames):
            heapq.heappush(ahead, (stamp, order, frame))
            while ahead and ahead[0][0] < stamp - REORDER_S:
                wall0 = yield from self._release(ahead, wall0)
        while ahead:
            wall0 = yield from self._release(ahead, wall0)

    def _release(self, ahead: list, wall0: float | None):
        stamp, _, frame = heapq.heappop(ahead)
        wall0 = time.monotonic() - stamp if wall0 is None else wall0
        delay = wall0 + stamp - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield stamp, frame
        return wall0

    def next(self, stopped=lambda: False) -> Arrival | Ended | None:
        """The next frame, or ``Ended``; None as soon as ``stopped()`` says so (checked every ``POLL_S``
        while waiting); raises ``Stalled`` after ``stall_s`` without anything."""
        deadline = time.monotonic() + self.stall_s
        while not stopped():
            try:
                return self._queue.get(timeout=min(POLL_S, self.stall_s))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise Stalled(f"{self.spec}: no frame for {self.stall_s:g} s (the source stalled); outputs "
                                  f"closed with what had arrived") from None
        return None

    @property
    def waiting(self) -> bool:
        """Whether something has arrived that ``next`` would hand over at once."""
        return not self._queue.empty()

    def take_waiting(self) -> list[Arrival | Ended]:
        """Everything waiting now, without blocking (what the pipeline drops from when it falls behind)."""
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def close(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=2.0)
        if self._thread.is_alive():  # blocked in a read that never returns (a stalled pipe): left to exit with us
            return
        try:
            self.container.close()
        except av.error.FFmpegError:
            pass
