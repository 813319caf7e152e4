"""Reading media through PyAV: frames with timestamps, audio as 16 kHz mono float32 (writing: `writer.py`).

No ffmpeg subprocess and no shell strings anywhere: PyAV decodes, resamples and encodes in-process.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Generator, Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from asd_se.core.clock import StreamClock
from asd_se.core.errors import MediaError
from asd_se.core.fsio import not_a_file

log = logging.getLogger(__name__)

AUDIO_RATE = 16_000  # every waveform inside asd-se
MODEL_FPS = 25  # the one internal frame rate: tracks, features and scores
SAMPLES_PER_FRAME = AUDIO_RATE // MODEL_FPS  # 640


@dataclass(frozen=True)
class VideoInfo:
    """What a container says about itself (duration and frame count are estimates for broken files)."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float
    has_audio: bool
    time_base: Fraction = Fraction(1, 90000)  # of the video stream's timestamps
    audio_rate: int | None = None
    audio_channels: int = 0
    container: str = ""  # format names as FFmpeg gives them: "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...
    video_codec: str = ""
    audio_codec: str = ""
    start: float = 0.0  # the container's start time, s (frame and audio times are counted from it)
    video_start: float = 0.0  # the video stream's first timestamp, s from the container's start
    rotation: int = 0  # degrees counterclockwise the stored frames are turned to be shown (a phone's display
    # matrix); width and height above are those of the upright frames, as every decoder here yields them

    @property
    def rotation_note(self) -> str | None:
        """A sentence for the user where the file is stored turned, else None."""
        if not self.rotation:
            return None
        return (f"{self.path}: stored turned, shown {self.rotation}° counterclockwise (display matrix); decoded "
                f"upright at {self.width}x{self.height}")


def open_media(path: Path) -> av.container.InputContainer:
    """A media file opened for reading; MediaError naming it where it is missing, a folder, empty or unreadable."""
    path = Path(path)
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a video file")
    if not path.is_file():
        raise MediaError(f"{path}: {not_a_file(path)}")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise MediaError(f"{path}: not a readable media file ({err})") from err


def quarter_turns(frame: av.VideoFrame) -> int:
    """How many quarter turns counterclockwise (0-3) show a decoded frame upright, from its display matrix
    (the side data phones write; a rotation between quarter turns goes to the nearest one)."""
    return int(round((frame.rotation or 0) / 90.0)) % 4


def _first_frame_turns(container: av.container.InputContainer, stream: av.stream.Stream) -> int:
    """The quarter turns of a file's first decodable video frame (0 where none decodes)."""
    try:
        for frame in container.decode(stream):
            return quarter_turns(frame)
    except av.error.FFmpegError:
        pass
    return 0


def _stream_start(stream: av.stream.Stream, container_start: float) -> float:
    """A stream's first timestamp in seconds from the container's start (0 where it has none)."""
    if stream.start_time is None:
        return 0.0
    return float(stream.start_time * stream.time_base) - container_start


def probe(path: Path, audio_stream: int = 0) -> VideoInfo:
    """Read a video's header (the audio facts of its ``audio_stream``-th audio stream, see
    ``choose_audio_stream``). Raises MediaError for missing, empty, unreadable or video-less files."""
    with open_media(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = 0.0
        audio = _audio_streams(container, path, audio_stream)
        audio = audio.codec_context if audio is not None else None
        start = (container.start_time or 0) / av.time_base
        video_start = _stream_start(stream, start)
        width, height = stream.codec_context.width, stream.codec_context.height
        turns = _first_frame_turns(container, stream)
        if turns % 2:
            width, height = height, width
        return VideoInfo(Path(path), width, height, float(rate), duration, audio is not None,
                         stream.time_base or Fraction(1, 90000),
                         (audio.sample_rate or None) if audio is not None else None,
                         audio.channels if audio is not None else 0, container.format.name,
                         stream.codec_context.name, audio.name if audio is not None else "", start,
                         video_start, 90 * turns)


@dataclass
class DecodedVideo:
    """What one decode pass collected besides the frames: audio, the clock that times them and the problems met
    (each cause said once: ``warnings``)."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    audio_start: float = 0.0  # the time (s) of ``audio[0]``: 0, or the start of the span decoded
    problems: list[str] = field(default_factory=list)
    truncated: bool = False
    start: float = 0.0  # the container's start time, s (where seeks and spans are counted from)
    fps: float = 25.0  # the video stream's nominal rate
    clock: StreamClock = field(default_factory=lambda: StreamClock("", 25.0))
    corrupt: list = field(default_factory=list)  # the timestamps of the packets skipped as corrupt

    def frame_time(self, frame: av.VideoFrame) -> float:
        """A video frame's time in seconds on the file's timeline (``core/clock.py``)."""
        return self.clock.time("video", _stamp(frame))

    def audio_time(self, frame: av.AudioFrame) -> float:
        """An audio frame's time in seconds on the file's timeline; the first fixes ``audio_origin``."""
        return self.clock.time("audio", _stamp(frame), frame.samples / frame.sample_rate)

    @property
    def audio_origin(self) -> float:
        """The audio's timestamp (s) that is time 0 (once its first frame was timed)."""
        return self.clock.origin("audio")

    @property
    def warnings(self) -> list[str]:
        """Every problem met, one sentence per cause."""
        skipped = [f"{self.clock.spec}: skipped {len(self.corrupt)} corrupt packet(s), the first at timestamp "
                   f"{self.corrupt[0][0]} ({self.corrupt[0][1]})"] if self.corrupt else []
        return self.problems + skipped + self.clock.notes


def _stamp(frame: av.VideoFrame | av.AudioFrame) -> Fraction | None:
    """A frame's timestamp in seconds, exact (``frame.time`` is a float: at 1e9 s it is off by 1e-7)."""
    if frame.pts is None or frame.time_base is None:
        return None
    return frame.pts * frame.time_base


class SeekError(Exception):
    """A seek that landed after the time asked for (a broken or missing index)."""


def _seek(container: av.container.InputContainer, seconds: float) -> None:
    """Move to the last keyframe at or before ``seconds`` of the container's timeline (absolute)."""
    container.seek(int(seconds * av.time_base), backward=True, any_frame=False)


def _seeked_frames(path: Path, span: tuple[float, float], with_audio: bool, result: DecodedVideo
                   ) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """The frames of ``span`` (s from the start): one seek to the keyframe before it, then forward until every
    stream has passed its end. Falls back to decoding from the first frame, with a note in
    ``result.warnings``, where the container cannot seek or lands after the span's start (a broken index)."""
    first, last = span
    container = open_media(path)
    try:
        streams = select_streams(container, path, with_audio, result, align=False)
        video = streams[0]
        begins = _stream_start(video, result.start)
        try:
            frames, head = decoded_packets(container, streams, path, result), []
            if first > begins:
                _seek(container, result.start + first)
                for frame in frames:  # up to the first video frame: where the seek landed
                    head.append(frame)
                    if isinstance(frame, av.VideoFrame):
                        break
                landed = head[-1].time - result.start if head and head[-1].time is not None else None
                if landed is not None and landed > first + 1e-6:
                    raise SeekError(f"landed at {landed:.2f} s")
        except (av.error.FFmpegError, SeekError) as err:
            result.problems.append(f"{path}: cannot seek to {first:.2f} s ({err}); decoded from the start instead")
            container.close()
            container = open_media(path)
            streams = select_streams(container, path, with_audio, result, align=False)
            frames, head = decoded_packets(container, streams, path, result), []
        done = {stream.type: False for stream in streams}
        for frame in chain(head, frames):
            time = frame.time - result.start if frame.time is not None else None
            if time is not None and time > last:
                done["video" if isinstance(frame, av.VideoFrame) else "audio"] = True
                if all(done.values()):
                    return
                continue
            yield frame
    finally:
        container.close()


def _audio_streams(container: av.container.InputContainer, path: Path | str, index: int) -> av.stream.Stream | None:
    """The ``index``-th audio stream (None where the file has none); MediaError where it has fewer."""
    streams = container.streams.audio
    if not streams:
        return None
    if not 0 <= index < len(streams):
        raise MediaError(f"{path}: --audio-stream {index}: the file has {len(streams)} audio stream(s), "
                         f"0 to {len(streams) - 1}")
    return streams[index]


def select_streams(container: av.container.InputContainer, path: Path | str, with_audio: bool,
                   result: DecodedVideo, audio_stream: int = 0, align: bool = True) -> list[av.stream.Stream]:
    """The first video stream (and the ``audio_stream``-th audio stream when ``with_audio``); sets the start,
    the fps and the clock (``core/clock.py``; ``align``: see ``StreamClock``)."""
    if not container.streams.video:
        raise MediaError(f"{path}: has no video stream")
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    audio = _audio_streams(container, path, audio_stream) if with_audio else None
    result.start = (container.start_time or 0) / av.time_base
    result.fps = float(video.average_rate or video.guessed_rate or 25)
    result.clock = StreamClock(str(path), result.fps, Fraction(container.start_time or 0, av.time_base), align)
    return [video] + ([audio] if audio is not None else [])


def decoded_packets(container: av.container.InputContainer, streams: list[av.stream.Stream], path: Path | str,
                    result: DecodedVideo) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Decode ``streams`` from where the container stands; corrupt packets are skipped with a warning."""
    for packet in container.demux(*streams):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError as err:
            result.corrupt.append((packet.pts, err))
            continue
        yield from frames


def demux(path: Path, with_audio: bool = True, result: DecodedVideo | None = None,
          span: tuple[float, float] | None = None, audio_stream: int = 0
          ) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Decode a file once, in order: the first video stream's frames, interleaved with the ``audio_stream``-th
    audio stream's frames when ``with_audio`` (spans: the first's). ``span`` ``(first, last)`` (s from the container's start) decodes only
    that stretch (from the keyframe before ``first`` until the first frames after ``last``). Corrupt packets
    are skipped with a warning in ``result.warnings``; a stream that ends in an error sets ``result.truncated``.
    ``result.start`` is set before the first frame."""
    result = result if result is not None else DecodedVideo()
    if span is not None:
        yield from _guarded(_seeked_frames(path, span, with_audio, result), path, result)
        return
    container = open_media(path)
    try:
        streams = select_streams(container, path, with_audio, result, audio_stream)
        last = yield from _guarded(decoded_packets(container, streams, path, result), path, result)
        if result.truncated:
            return
        video = streams[0]
        if video.duration is not None and video.time_base is not None:
            expected = float(video.duration * video.time_base)
        else:
            expected = container.duration / av.time_base if container.duration else None
        decoded = (last or 0.0) + 1.0 / result.fps
        if expected is not None and decoded < expected - max(0.5, 2.0 / result.fps):
            result.truncated = True  # some demuxers stop at damaged data without an error
            result.problems.append(f"{path}: decoding stopped at {decoded:.2f} s of {expected:.2f} s "
                                   f"(damaged or truncated file); the rest is missing")
    finally:
        container.close()


def _guarded(frames: Iterator[av.VideoFrame | av.AudioFrame], path: Path, result: DecodedVideo
             ) -> Generator[av.VideoFrame | av.AudioFrame, None, float | None]:
    """Pass frames through; a stream that ends in an error stops them and sets ``result.truncated``. Returns
    the time of the last video frame (s from the start)."""
    last: float | None = None
    try:
        for frame in frames:
            if isinstance(frame, av.VideoFrame) and frame.time is not None:
                last = frame.time - result.start
            yield frame
    except av.error.FFmpegError as err:
        result.truncated = True
        where = "before the first frame" if last is None else f"after {last:.2f} s"
        result.problems.append(f"{path}: stream ends in an error {where} ({err})")
    return last


class FrameConverter:
    """Decoded frames -> upright numpy images, keeping one swscale context per target format and size. (PyAV's
    ``frame.to_ndarray(format=...)`` builds a fresh context per call: 20-30x slower, identical pixels.)

    THE place where a stored-turned frame (a phone's display matrix) is turned upright: every image asd-se
    looks at — detection, crops, drawing, prep — comes through here. ``size`` ``(W, H)`` (upright): every frame
    comes out at that size unless another is asked for, so a picture that changes size mid-file is scaled to
    the size a render was set up for."""

    def __init__(self, size: tuple[int, int] | None = None):
        self.size = size
        self._reformatters: dict[tuple, VideoReformatter] = {}

    def __call__(self, frame: av.VideoFrame, format: str, width: int | None = None, height: int | None = None,
                 interpolation: str | None = None) -> np.ndarray:
        """``(H, W, 3)`` for ``bgr24``/``rgb24``, ``(H, W)`` for ``gray``, upright; scaled when a size (of the
        upright image) is given, else to the converter's ``size``."""
        if width is None and height is None and self.size is not None:
            width, height = self.size
        turns = quarter_turns(frame)
        if turns % 2:
            width, height = height, width
        reformatter = self._reformatters.setdefault((format, width, height), VideoReformatter())
        image = reformatter.reformat(frame, width, height, format=format, interpolation=interpolation).to_ndarray()
        return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def decode(path: Path, formats: tuple[str, ...] = ("bgr24",), with_audio: bool = True,
           result: DecodedVideo | None = None, span: tuple[float, float] | None = None,
           size: tuple[int, int] | None = None) -> Iterator[tuple[float, list[np.ndarray]]]:
    """Decode a file once, in order: yields ``(time_s, images)`` per video frame, one image per format.

    Each image is ``(H, W, 3)`` uint8 for ``bgr24``/``rgb24`` or ``(H, W)`` for ``gray``; ``gray`` is THE
    grayscale every face crop is cut from (prep, training and render alike). Times are seconds from
    the container's start. When ``with_audio``, the audio stream is decoded in the same demux pass into
    ``result.audio`` (see ``MonoAudio``; complete once the generator is exhausted). Corrupt packets and
    truncation are handled as in ``demux``. With a ``span`` ``(first, last)``, only the frames from ``first``
    to the first one after ``last`` are yielded and the audio covers that stretch (``result.audio_start``):
    memory does not grow with the file's length. ``size`` ``(W, H)``: every image at that size (a render's frames
    at the size it was set up for, see ``FrameConverter``).
    """
    result = result if result is not None else DecodedVideo()
    result.audio_start = span[0] if span is not None else 0.0
    audio, convert = MonoAudio(result.audio_start), FrameConverter(size)
    for frame in demux(path, with_audio, result, span):
        if isinstance(frame, av.AudioFrame):
            result.audio_time(frame)
            audio.add(frame, result.audio_origin)
            continue
        time = result.frame_time(frame)
        if span is None or time >= span[0]:
            yield time, [convert(frame, name) for name in formats]
    result.audio = audio.finish()


class MonoAudio:
    """Collects decoded audio frames into one 16 kHz mono float32 waveform whose sample 0 is at time
    ``origin`` (s from the container's start): audio that starts before or after it is shifted by its first
    timestamp (what lies before ``origin`` is dropped).

    The resampler starts on the stream's own grid: the first frame is trimmed to the next input sample that
    falls exactly on a 16 kHz sample (counted from the stream's time 0), so a decode that starts after a seek
    gives the same samples as one from the first frame.
    """

    def __init__(self, origin: float = 0.0):
        self._origin = origin
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        self._chunks: list[np.ndarray] = []
        self._offset: int | None = None  # samples between the origin and the first audio frame
        self._skip = 0  # samples still to drop from the head: audio before the origin

    def add(self, frame: av.AudioFrame, start: float) -> None:
        """Append one frame of any format, rate and layout; ``start`` is the container's start time (s)."""
        if self._offset is None:
            first = int(round((frame.time - start) * frame.sample_rate)) if frame.time is not None else 0
            skip = -first % (frame.sample_rate // math.gcd(frame.sample_rate, AUDIO_RATE))
            frame = _trimmed(frame, skip)
            self._offset = int(round(((first + skip) / frame.sample_rate - self._origin) * AUDIO_RATE))
            self._chunks.append(np.zeros(max(self._offset, 0), np.float32))
            self._skip = max(-self._offset, 0)
        self._chunks.extend(f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame))

    def take(self) -> np.ndarray:
        """The samples ``(n,)`` added since the last ``take`` (from the first frame's place on): a live caller
        reads the waveform as it grows; the resampler may still hold a few."""
        data = np.concatenate(self._chunks).astype(np.float32) if self._chunks else np.zeros(0, np.float32)
        self._chunks = []
        cut = min(self._skip, len(data))
        self._skip -= cut
        return data[cut:]

    def finish(self) -> np.ndarray:
        """The waveform ``(N,)`` (what no ``take`` returned yet); empty when no frame was added."""
        if self._offset is None:
            return np.zeros(0, np.float32)
        self._chunks.extend(f.to_ndarray().reshape(-1) for f in self._resampler.resample(None))
        return self.take()


def _trimmed(frame: av.AudioFrame, skip: int) -> av.AudioFrame:
    """``frame`` without its first ``skip`` samples (any sample format, planar or packed)."""
    if skip == 0:
        return frame
    samples = frame.to_ndarray()  # (channels, n) planar; (1, n · channels) packed
    width = 1 if frame.format.is_planar else len(frame.layout.channels)
    trimmed = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, skip * width:]), format=frame.format.name,
                                         layout=frame.layout.name)
    trimmed.sample_rate = frame.sample_rate
    return trimmed


def read_audio(path: Path) -> np.ndarray:
    """The first audio stream as 16 kHz mono float32 ``(N,)``. Raises MediaError if there is none."""
    container = open_media(path)
    try:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        audio = MonoAudio()
        for frame in container.decode(container.streams.audio[0]):
            audio.add(frame, (container.start_time or 0) / av.time_base)
        return audio.finish()
    finally:
        container.close()


SILENT_DBFS = -60.0  # an audio stream quieter than this over its first LEVEL_PROBE_S holds no sound to score
LEVEL_PROBE_S = 60.0


def _levels(container: av.container.InputContainer, streams: list[av.stream.Stream]) -> list[float]:
    """The RMS level (dBFS) of each audio stream over its first ``LEVEL_PROBE_S`` seconds, as 16 kHz mono."""
    audio = {stream.index: MonoAudio() for stream in streams}
    heard = {stream.index: 0.0 for stream in streams}
    try:
        for packet in container.demux(*streams):
            if min(heard.values()) >= LEVEL_PROBE_S:
                break
            index = packet.stream.index
            if heard[index] >= LEVEL_PROBE_S:
                continue
            try:
                for frame in packet.decode():
                    audio[index].add(frame, frame.time or 0.0)
                    heard[index] += frame.samples / frame.sample_rate
            except av.error.InvalidDataError:
                continue
    except av.error.FFmpegError:
        pass
    levels = []
    for stream in streams:
        samples = audio[stream.index].finish()
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
        levels.append(20 * math.log10(rms) if rms > 0 else -math.inf)
    return levels


def choose_audio_stream(path: Path, asked: int | None = None) -> tuple[int, list[str]]:
    """Which audio stream render and live listen to, as its index among the file's audio streams, and a note
    where there was a choice: ``asked`` (``--audio-stream N``; MediaError where the file has no such stream),
    else the first whose first minute is not silent (above ``SILENT_DBFS``), else the first."""
    with open_media(path) as container:
        streams = list(container.streams.audio)
        if asked is not None:
            _audio_streams(container, path, asked)
            return asked, []
        if len(streams) < 2:
            return 0, []
        levels = _levels(container, streams)
    chosen = next((index for index, level in enumerate(levels) if level > SILENT_DBFS), 0)
    heard = ", ".join(f"{index}: {level:.0f} dBFS" for index, level in enumerate(levels))
    why = "the first with sound" if chosen or levels[0] > SILENT_DBFS else "none has sound in its first minute"
    return chosen, [f"{path}: {len(streams)} audio streams ({heard} over the first minute); scored against stream "
                    f"{chosen} ({why}); --audio-stream N chooses another"]
