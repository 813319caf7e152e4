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

from asd_se.fsio import atomic_path

log = logging.getLogger(__name__)

AUDIO_RATE = 16_000  # every waveform inside asd-se
MODEL_FPS = 25  # the one internal frame rate: tracks, features and scores
SAMPLES_PER_FRAME = AUDIO_RATE // MODEL_FPS  # 640


class MediaError(Exception):
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
        return VideoInfo(Path(path), stream.codec_context.width, stream.codec_context.height, float(rate),
                         duration, bool(container.streams.audio))


@dataclass
class DecodedVideo:
    """What one decode pass collected besides the frames: audio and the warnings met on the way."""

    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False


def decode(path: Path, formats: tuple[str, ...] = ("bgr24",), with_audio: bool = True,
           result: DecodedVideo | None = None) -> Iterator[tuple[float, list[np.ndarray]]]:
    """Decode a file once, in order: yields ``(time_s, images)`` per video frame, one image per format.

    Each image is ``(H, W, 3)`` uint8 for ``bgr24``/``rgb24`` or ``(H, W)`` for ``gray``; ``gray`` is THE
    grayscale every face crop is cut from (prep, training and render alike). Times are seconds from
    the container's start. When ``with_audio``, the audio stream is decoded in the same demux pass into
    ``result.audio`` (16 kHz mono float32, complete once the generator is exhausted). Corrupt packets are
    skipped with a warning in ``result.warnings``; a stream that ends in an error sets ``result.truncated``.
    """
    result = result if result is not None else DecodedVideo()
    container = _open(path)
    try:
        if not container.streams.video:
            raise MediaError(f"{path}: has no video stream")
        video = container.streams.video[0]
        video.thread_type = "AUTO"
        streams = [video]
        resampler = None
        chunks: list[np.ndarray] = []
        if with_audio and container.streams.audio:
            streams.append(container.streams.audio[0])
            resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        start = (container.start_time or 0) / av.time_base
        step = 1.0 / float(video.average_rate or 25)
        last_time = -step
        try:
            for packet in container.demux(*streams):
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as err:
                    result.warnings.append(f"{path}: skipped a corrupt packet at {packet.pts} ({err})")
                    continue
                for frame in frames:
                    if isinstance(frame, av.AudioFrame):
                        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
                        continue
                    time = frame.time - start if frame.time is not None else last_time + step
                    last_time = time
                    yield time, [frame.to_ndarray(format=name) for name in formats]
        except av.error.FFmpegError as err:
            result.truncated = True
            result.warnings.append(f"{path}: stream ends in an error after {last_time + step:.2f} s ({err})")
        if resampler is not None:
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
            result.audio = np.concatenate(chunks).astype(np.float32) if chunks else result.audio
    finally:
        container.close()


def read_audio(path: Path) -> np.ndarray:
    """The first audio stream as 16 kHz mono float32 ``(N,)``. Raises MediaError if there is none."""
    container = _open(path)
    try:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
        return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    finally:
        container.close()


class Mp4Writer:
    """Write an MP4 (H.264 + optional AAC) atomically: nothing appears at ``path`` until ``close()`` succeeds.

    Use as a context manager; an exception inside the block leaves no file behind. Odd frame sizes are
    encoded as 4:4:4 (4:2:0 needs even sizes), so the output keeps the input's exact size.
    """

    def __init__(self, path: Path, width: int, height: int, fps: Fraction | float, audio_rate: int | None = None,
                 audio_channels: int = 1, crf: int = 20, preset: str = "veryfast"):
        self.path = Path(path)
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4")
        rate = Fraction(fps).limit_denominator(1001)
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._video.options = {"crf": str(crf), "preset": preset}
        self._video.codec_context.time_base = 1 / rate
        self._audio = None
        self._audio_samples = 0
        if audio_rate:
            self._audio = self._container.add_stream("aac", rate=audio_rate)
            self._audio.layout = "mono" if audio_channels == 1 else "stereo"
        self._frames = 0

    def write_frame(self, image: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame at the next frame time."""
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = self._frames
        self._frames += 1
        self._container.mux(self._video.encode(frame))

    def write_audio(self, samples: np.ndarray) -> None:
        """Append ``(channels, N)`` float32 samples in [-1, 1] at the stream's rate."""
        if self._audio is None:
            raise ValueError("this writer was opened without audio")
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=self._audio.layout.name)
        frame.sample_rate = self._audio.rate
        frame.pts = self._audio_samples
        self._audio_samples += samples.shape[1]
        self._container.mux(self._audio.encode(frame))

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
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
