"""Writing video files through PyAV, atomically: MP4 / Matroska / WebM with H.264, VP9 or MPEG-4 video and AAC,
Opus or Vorbis audio. Render writes H.264 + AAC MP4s; the synthetic world writes every combination, so prep is
tested on the formats real datasets come in (AVA's movies are mkv/mp4/webm).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from asd_se.core.fsio import atomic_path

CONTAINERS = {"mp4": "mp4", "mkv": "matroska", "webm": "webm"}  # file suffix -> FFmpeg muxer
VIDEO_CODECS = {"h264": "libx264", "vp9": "libvpx-vp9", "mpeg4": "mpeg4"}  # name -> FFmpeg encoder
AUDIO_CODECS = {"aac": "aac", "opus": "libopus", "vorbis": "vorbis"}
# What each container can hold (WebM: VP8/VP9/AV1 with Opus/Vorbis; MP4 has no Vorbis mapping).
ALLOWED = {"mp4": ({"h264", "vp9", "mpeg4"}, {"aac", "opus"}),
           "mkv": ({"h264", "vp9", "mpeg4"}, {"aac", "opus", "vorbis"}),
           "webm": ({"vp9"}, {"opus", "vorbis"})}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}
OPUS_RATES = (48000, 24000, 16000, 12000, 8000)
VORBIS_CHANNELS = 2  # FFmpeg's native Vorbis encoder writes stereo only


@dataclass(frozen=True)
class Encoding:
    """Container and codecs of a written file (names as the ``asd-se synth`` options spell them)."""

    container: str = "mp4"
    video_codec: str = "h264"
    audio_codec: str = "aac"

    def check(self) -> None:
        """Raises ValueError for a name that is unknown or a pairing the container cannot hold."""
        if self.container not in ALLOWED:
            raise ValueError(f"container {self.container!r}: choose from {', '.join(ALLOWED)}")
        videos, audios = ALLOWED[self.container]
        if self.video_codec not in videos:
            raise ValueError(f"{self.container} cannot hold {self.video_codec} video "
                             f"(it holds {', '.join(sorted(videos))})")
        if self.audio_codec not in audios:
            raise ValueError(f"{self.container} cannot hold {self.audio_codec} audio "
                             f"(it holds {', '.join(sorted(audios))})")


def _video_options(codec: str, crf: int, preset: str) -> dict[str, str]:
    if codec == "h264":
        return {"crf": str(crf), "preset": preset}
    if codec == "vp9":  # constant quality, fastest settings
        return {"crf": str(crf + 12), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    return {"flags": "+qscale", "global_quality": str(3 * 118)}  # MPEG-4 part 2 at q 3 (118 = FF_QP2LAMBDA)


class _EncoderThread:
    """Runs the calls it is given in order on one thread (PyAV releases the GIL while it encodes, so the caller
    draws the next frame meanwhile). At most ``depth`` calls wait; the first error is raised again in the caller,
    at its next call or at ``finish``, and the calls after it are dropped."""

    def __init__(self, depth: int = 8):
        self._calls: queue.Queue[Callable[[], None] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="asd-se-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (call := self._calls.get()) is not None:
            if self._error is None:
                try:
                    call()
                except BaseException as err:  # handed to the caller
                    self._error = err

    def submit(self, call: Callable[[], None]) -> None:
        self._raise()
        self._calls.put(call)

    def finish(self) -> None:
        """Wait for every call given; raise the first error."""
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error


class VideoWriter:
    """Write a video file atomically: nothing appears at ``path`` until ``close()`` succeeds.

    Use as a context manager; an exception inside the block leaves no file behind. Odd frame sizes are
    encoded as 4:4:4 where the codec allows it (4:2:0 needs even sizes), so the output keeps the input's exact
    size. Frames are written at a constant ``fps``, or at the timestamps given (variable frame rate) in units
    of ``time_base``. ``start`` (s) is the first frame's timestamp: a container whose start time is not 0.
    Audio keeps ``audio_channels`` (layouts up to 7.1; others become stereo; Vorbis is always stereo) and
    ``audio_rate`` where the codec allows it (Opus takes 8-48 kHz rates only; others become 48 kHz).

    Frames and audio are encoded on a background thread, in the order written (an encoding error is raised at a
    later write or at ``close``).

    ``fragmented`` (MP4 only; ``asd-se live``): the one exception to atomic writing, by design — the file grows
    in place as fragmented MP4, a fragment per keyframe (one a second), each flushed as it is written, so the
    file is playable up to its last whole fragment however the process ends; ``abort`` keeps what was written.
    """

    def __init__(self, path: Path, width: int, height: int, fps: Fraction | float, audio_rate: int | None = None,
                 audio_channels: int = 1, crf: int = 20, preset: str = "veryfast",
                 time_base: Fraction | None = None, encoding: Encoding = Encoding(), start: float = 0.0,
                 fragmented: bool = False):
        encoding.check()
        if fragmented and encoding.container != "mp4":
            raise ValueError("only MP4 is written fragmented")
        self.path = Path(path)
        self._atomic = None if fragmented else atomic_path(self.path)
        tmp = self.path if fragmented else self._atomic.__enter__()
        options = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"} if fragmented \
            else {}
        self._container = av.open(str(tmp), mode="w", format=CONTAINERS[encoding.container], options=options)
        rate = Fraction(fps).limit_denominator(1001)
        self._video = self._container.add_stream(VIDEO_CODECS[encoding.video_codec], rate=rate)
        self._video.width, self._video.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        self._video.pix_fmt = "yuv420p" if even or encoding.video_codec == "mpeg4" else "yuv444p"
        self._i420 = even and self._video.pix_fmt == "yuv420p"  # frames converted by OpenCV (10x swscale's speed)
        self._video.options = _video_options(encoding.video_codec, crf, preset) | (
            {"g": str(max(1, round(float(rate))))} if fragmented else {})
        self._video.codec_context.time_base = time_base or 1 / rate
        self._first_pts = int(round(start / self._video.codec_context.time_base))
        self._last_pts = self._first_pts - 1
        self._audio = None
        self._audio_samples = 0
        if audio_rate:
            codec = AUDIO_CODECS[encoding.audio_codec]
            out_rate = audio_rate if codec != "libopus" or audio_rate in OPUS_RATES else 48000
            self._audio = self._container.add_stream(codec, rate=out_rate)
            channels = VORBIS_CHANNELS if codec == "vorbis" else audio_channels
            self._audio.layout = LAYOUTS.get(channels, "stereo")
            if codec == "vorbis":
                self._audio.codec_context.options = {"strict": "experimental"}
            self._input_rate = audio_rate
            self._resampler = av.AudioResampler(format=self._audio.codec_context.format.name,
                                                layout=self._audio.layout.name, rate=out_rate)
            self._audio_samples = int(round(start * out_rate))
        self._encoder = _EncoderThread()

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def pts(self, seconds: float) -> int:
        """A time (s from ``start``) in the video's ``time_base`` units, as ``write_frame`` takes it."""
        return int(round(seconds / self._video.codec_context.time_base))

    def write_frame(self, image: np.ndarray, pts: int | None = None) -> None:
        """Append one ``(H, W, 3)`` uint8 BGR frame at ``pts`` (in ``time_base`` units from ``start``; default:
        the next frame time). A timestamp that does not increase is moved one unit past the previous frame."""
        if self._i420:
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), format="yuv420p")
        else:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        wanted = self._first_pts + pts if pts is not None else self._last_pts + 1
        frame.pts = self._last_pts = max(self._last_pts + 1, wanted)
        self._encoder.submit(lambda: self._container.mux(self._video.encode(frame)))

    def write_audio(self, samples: np.ndarray) -> None:
        """Append ``(channels, N)`` float32 samples in [-1, 1] at ``audio_rate`` (any channel count)."""
        self._check_audio()
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        layout = LAYOUTS.get(samples.shape[0], "stereo")
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate = self._input_rate
        self._encoder.submit(lambda: self._encode_audio(frame))

    def write_audio_frame(self, frame: av.AudioFrame, start: float = 0.0) -> None:
        """Append a decoded audio frame of any format, rate and layout. The first frame's ``start`` (s) sets
        where the audio begins, so a stream that starts after the video keeps its offset."""
        self._check_audio()
        self._encoder.submit(lambda: self._encode_audio(frame, start))

    def _check_audio(self) -> None:
        if self._audio is None:
            raise ValueError("this writer was opened without audio")

    def _encode_audio(self, frame: av.AudioFrame | None, start: float = 0.0) -> None:
        if self._audio_samples == 0 and start > 0:
            self._audio_samples = int(round(start * self._audio.rate))
        if frame is not None:
            frame.pts = None
        for converted in self._resampler.resample(frame):
            converted.pts, converted.time_base = self._audio_samples, Fraction(1, self._audio.rate)
            self._audio_samples += converted.samples
            self._container.mux(self._audio.encode(converted))

    def close(self) -> None:
        """Flush the encoders and move the finished file into place."""
        try:
            self._encoder.finish()
            self._container.mux(self._video.encode(None))
            if self._audio is not None:
                self._encode_audio(None)
                self._container.mux(self._audio.encode(None))
            self._container.close()
        except BaseException as err:
            self.abort(err)
            raise
        if self._atomic is not None:
            self._atomic.__exit__(None, None, None)

    def abort(self, error: BaseException | None = None) -> None:
        """Drop everything written so far; no file appears at ``path`` (fragmented: the file keeps its whole
        fragments). With the ``error`` that stopped the
        writing, an operating-system write error becomes the OutputError naming ``path`` (see ``atomic_path``)."""
        try:
            self._encoder.finish()
        except BaseException as err:  # an encoding error is the reason, where none was given
            error = error if error is not None else err
        try:
            self._container.close()
        except av.error.FFmpegError:
            pass
        if self._atomic is None:  # fragmented: what was written stays, playable
            return
        error = error if error is not None else RuntimeError("aborted")
        self._atomic.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)
