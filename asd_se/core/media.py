"""Media I/O through PyAV: frames with timestamps, audio as 16 kHz mono float32, MP4 writing (H.264 + AAC).

No ffmpeg subprocess and no shell strings anywhere: PyAV decodes, resamples and encodes in-process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from asd_se.core.errors import AsdSeError
from asd_se.core.fsio import atomic_path

log = logging.getLogger(__name__)

AUDIO_RATE = 16_000  # every waveform inside asd-se
MODEL_FPS = 25  # the one internal frame rate: tracks, features and scores
SAMPLES_PER_FRAME = AUDIO_RATE // MODEL_FPS  # 640


class MediaError(AsdSeError):
    """A media file that cannot be used; the message names the file."""


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


def _open(path: Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise MediaError(f"{path}: not a readable media file ({err})") from err


def probe(path: Path) -> VideoInfo:
    """Read a video's header. Raises MediaError for missing, empty, unreadable or video-less files."""
    with _open(path) as container:
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
        audio = container.streams.audio[0].codec_context if container.streams.audio else None
        return VideoInfo(Path(path), stream.codec_context.width, stream.codec_context.height, float(rate),
                         duration, audio is not None, stream.time_base or Fraction(1, 90000),
                         (audio.sample_rate or None) if audio is not None else None,
                         audio.channels if audio is not None else 0, container.format.name,
                         stream.codec_context.name, audio.name if audio is not None else "")


@dataclass
class DecodedVideo:
    """What one decode pass collected besides the frames: audio, the start time and the warnings met."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    start: float = 0.0  # the container's start time, s; frame times are relative to it
    fps: float = 25.0  # the video stream's nominal rate
    last_time: float | None = None  # of the last video frame timed

    def frame_time(self, frame: av.VideoFrame) -> float:
        """A video frame's time in seconds from the start; a frame without a timestamp is placed one nominal
        frame after the previous one."""
        if frame.time is not None:
            self.last_time = frame.time - self.start
        else:
            self.last_time = (self.last_time if self.last_time is not None else -1.0 / self.fps) + 1.0 / self.fps
        return self.last_time


def demux(path: Path, with_audio: bool = True, result: DecodedVideo | None = None
          ) -> Iterator[av.VideoFrame | av.AudioFrame]:
    """Decode a file once, in order: the first video stream's frames, interleaved with the first audio
    stream's frames when ``with_audio``. Corrupt packets are skipped with a warning in ``result.warnings``; a
    stream that ends in an error sets ``result.truncated``. ``result.start`` is set before the first frame."""
    result = result if result is not None else DecodedVideo()
    container = _open(path)
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video] + ([container.streams.audio[0]] if with_audio and container.streams.audio else [])
        result.start = (container.start_time or 0) / av.time_base
        result.fps = float(video.average_rate or video.guessed_rate or 25)
        last: float | None = None  # time of the last video frame seen
        try:
            for packet in container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as err:
                    result.warnings.append(f"{path}: skipped a corrupt packet at {packet.pts} ({err})")
                    continue
                for frame in frames:
                    if isinstance(frame, av.VideoFrame) and frame.time is not None:
                        last = frame.time - result.start
                    yield frame
        except av.error.FFmpegError as err:
            result.truncated = True
            where = "before the first frame" if last is None else f"after {last:.2f} s"
            result.warnings.append(f"{path}: stream ends in an error {where} ({err})")
            return
        if video.duration is not None and video.time_base is not None:
            expected = float(video.duration * video.time_base)
        else:
            expected = container.duration / av.time_base if container.duration else None
        decoded = (last or 0.0) + 1.0 / result.fps
        if expected is not None and decoded < expected - max(0.5, 2.0 / result.fps):
            result.truncated = True  # some demuxers stop at damaged data without an error
            result.warnings.append(f"{path}: decoding stopped at {decoded:.2f} s of {expected:.2f} s "
                                   f"(damaged or truncated file); the rest is missing")
    finally:
        container.close()


class FrameConverter:
    """Decoded frames -> numpy images, keeping one swscale context per target format and size. (PyAV's
    ``frame.to_ndarray(format=...)`` builds a fresh context per call: 20-30x slower, identical pixels.)"""

    def __init__(self):
        self._reformatters: dict[tuple, VideoReformatter] = {}

    def __call__(self, frame: av.VideoFrame, format: str, width: int | None = None, height: int | None = None,
                 interpolation: str | None = None) -> np.ndarray:
        """``(H, W, 3)`` for ``bgr24``/``rgb24``, ``(H, W)`` for ``gray``; scaled when a size is given."""
        reformatter = self._reformatters.setdefault((format, width, height), VideoReformatter())
        return reformatter.reformat(frame, width, height, format=format, interpolation=interpolation).to_ndarray()


def decode(path: Path, formats: tuple[str, ...] = ("bgr24",), with_audio: bool = True,
           result: DecodedVideo | None = None) -> Iterator[tuple[float, list[np.ndarray]]]:
    """Decode a file once, in order: yields ``(time_s, images)`` per video frame, one image per format.

    Each image is ``(H, W, 3)`` uint8 for ``bgr24``/``rgb24`` or ``(H, W)`` for ``gray``; ``gray`` is THE
    grayscale every face crop is cut from (prep, training and render alike). Times are seconds from
    the container's start. When ``with_audio``, the audio stream is decoded in the same demux pass into
    ``result.audio`` (see ``MonoAudio``; complete once the generator is exhausted). Corrupt packets and
    truncation are handled as in ``demux``.
    """
    result = result if result is not None else DecodedVideo()
    audio, convert = MonoAudio(), FrameConverter()
    for frame in demux(path, with_audio, result):
        if isinstance(frame, av.AudioFrame):
            audio.add(frame, result.start)
            continue
        yield result.frame_time(frame), [convert(frame, name) for name in formats]
    result.audio = audio.finish()


class MonoAudio:
    """Collects decoded audio frames into one 16 kHz mono float32 waveform whose sample 0 is at time 0: audio
    that starts before or after the video is shifted by its first timestamp."""

    def __init__(self):
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        self._chunks: list[np.ndarray] = []
        self._offset: int | None = None  # samples between time 0 and the first audio frame

    def add(self, frame: av.AudioFrame, start: float) -> None:
        """Append one frame of any format, rate and layout; ``start`` is the container's start time (s)."""
        if self._offset is None:
            self._offset = int(round((frame.time - start) * AUDIO_RATE)) if frame.time is not None else 0
            self._chunks.append(np.zeros(max(self._offset, 0), np.float32))
        self._chunks.extend(f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame))

    def finish(self) -> np.ndarray:
        """The waveform ``(N,)``; empty when no frame was added."""
        if self._offset is None:
            return np.zeros(0, np.float32)
        self._chunks.extend(f.to_ndarray().reshape(-1) for f in self._resampler.resample(None))
        return np.concatenate(self._chunks).astype(np.float32)[max(-self._offset, 0):]


def read_audio(path: Path) -> np.ndarray:
    """The first audio stream as 16 kHz mono float32 ``(N,)``. Raises MediaError if there is none."""
    container = _open(path)
    try:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        audio = MonoAudio()
        for frame in container.decode(container.streams.audio[0]):
            audio.add(frame, (container.start_time or 0) / av.time_base)
        return audio.finish()
    finally:
        container.close()


AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}


class Mp4Writer:
    """Write an MP4 (H.264 + optional AAC) atomically: nothing appears at ``path`` until ``close()`` succeeds.

    Use as a context manager; an exception inside the block leaves no file behind. Odd frame sizes are
    encoded as 4:4:4 (4:2:0 needs even sizes), so the output keeps the input's exact size. Frames are
    written at a constant ``fps``, or at the timestamps given (variable frame rate) in units of ``time_base``.
    Audio keeps ``audio_channels`` (AAC layouts up to 7.1; others are mixed down to stereo).
    """

    def __init__(self, path: Path, width: int, height: int, fps: Fraction | float, audio_rate: int | None = None,
                 audio_channels: int = 1, crf: int = 20, preset: str = "veryfast",
                 time_base: Fraction | None = None):
        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._video.codec_context.time_base = time_base or 1 / rate
        self._audio = None
        self._audio_samples = 0
        if audio_rate:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = AAC_LAYOUTS.get(audio_channels, "stereo")
            self._resampler = av.AudioResampler(format="fltp", layout=self._audio.layout.name, rate=audio_rate)
        self._last_pts = -1

    def write_frame(self, image: np.ndarray, pts: int | None = None) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame at ``pts`` (in ``time_base`` units; default: the next
        frame time). A timestamp that does not increase is moved one unit past the previous frame."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._last_pts = max(self._last_pts + 1, pts if pts is not None else self._last_pts + 1)
        self._container.mux(self._video.encode(frame))

    def write_audio(self, samples: np.ndarray) -> None:
        """Append ``(channels, N)`` float32 samples in [-1, 1] at the stream's rate and layout."""
        if self._audio is None:
            raise ValueError("this writer was opened without audio")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._audio.layout.name)
        frame.sample_rate = self._audio.rate
        frame.pts = self._audio_samples
        self._audio_samples += samples.shape[1]
        self._container.mux(self._audio.encode(frame))

    def write_audio_frame(self, frame: av.AudioFrame, start: float = 0.0) -> None:
        """Append a decoded audio frame of any format, rate and layout. The first frame's ``start`` (s) sets
        where the audio begins, so a stream that starts after the video keeps its offset."""
        if self._audio is None:
            raise ValueError("this writer was opened without audio")
        if self._audio_samples == 0 and start > 0:
            self._audio_samples = int(round(start * self._audio.rate))
        frame.pts = None
        for converted in self._resampler.resample(frame):
            self.write_audio(converted.to_ndarray())

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            for converted in self._resampler.resample(None):
                self.write_audio(converted.to_ndarray())
            self._container.mux(self._audio.encode(None))
        self._container.close()
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop everything written so far; no file appears at ``path``."""
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass
        self._atomic.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> "Mp4Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
