"""``asd-se prep --check``: the pre-flight of a prep run, over the same arguments, in seconds per video.

Every video the annotations name is probed (present, readable, video and audio streams, codecs, frame rate,
duration covering the last annotated timestamp) and a few of its frames decoded and cut into crops, which
times this machine's decoding and crop encoding; with the annotations planned into tracks, that gives an
estimate of prep's time and of the store's size. Every CSV problem prep would report is reported. Nothing is
written.
"""

from __future__ import annotations

import time
from contextlib import closing
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from asd_se.core.annotated_tracks import plan_tracks
from asd_se.core.annotations import Problem, Row
from asd_se.core.crop import face_crop
from asd_se.core.errors import EXIT_OK, EXIT_SKIPPED, MediaError
from asd_se.core.media import SAMPLES_PER_FRAME, VideoInfo, decode, probe
from data_prep.extract import SPAN_MARGIN_S
from data_prep.prep import PrepConfig, group_problems, plan_prep
from data_prep.store import encode_crop

TIMED_FRAMES = 6  # decoded (and cropped) per video to time this machine
KEYFRAME_PREROLL_S = 2.0  # what a seek decodes before the span on average (half a typical 4-5 s GOP)
AUDIO_BYTES_PER_FRAME = SAMPLES_PER_FRAME * 2  # int16 in the store


@dataclass
class VideoCheck:
    """One video's pre-flight: what its file is, what prep will cut from it, and what that will cost."""

    video_id: str
    path: Path
    rows: int
    first: float  # first and last annotated timestamp, s
    last: float
    face_frames: int  # 25 fps samples of all its tracks
    info: VideoInfo | None = None
    problem: str | None = None  # why prep cannot use it
    past_end: list[Row] = field(default_factory=list)  # rows later than the file's end: prep skips them
    seconds: float = 0.0  # estimated prep time
    store_bytes: float = 0.0  # estimated store size

    def line(self) -> str:
        """One row of the summary table."""
        if self.info is None:
            return f"{self.video_id:<24} {'-':<30} {'-':>10} {'-':>9} {self._span():>17} {self.rows:>7}  {self.problem}"
        info = self.info
        codecs = f"{self.path.suffix.lstrip('.')} {info.video_codec}/{info.audio_codec or '-'}"
        size = f"{info.width}x{info.height}@{info.fps:.3g}"
        status = self.problem or (f"{len(self.past_end)} rows past the end" if self.past_end else "ok")
        return (f"{self.video_id:<24} {codecs:<30} {size:>10} {info.duration:>8.1f}s {self._span():>17} "
                f"{self.rows:>7}  {status}")

    def _span(self) -> str:
        return f"{self.first:.1f}-{self.last:.1f}s"


@dataclass
class CheckReport:
    """The pre-flight of a whole prep run."""

    videos: list[VideoCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # everything prep would skip (CSV rows, videos)
    videos_asked: int = 0
    workers: int = 1
    wall_s: float = 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.problems else EXIT_OK

    def render(self) -> str:
        """The summary table, the problems, and the estimates."""
        usable = [v for v in self.videos if v.problem is None]
        header = f"{'video':<24} {'file':<30} {'size@fps':>10} {'duration':>9} {'annotated':>17} {'rows':>7}  status"
        lines = [header, *(v.line() for v in self.videos)]
        lines.append(f"{len(usable)}/{self.videos_asked} videos ready for prep; "
                     f"{sum(v.face_frames for v in usable)} face-frames at 25 fps in their tracks")
        lines.extend(group_problems(self.problems))
        seconds = sum(v.seconds for v in usable) / max(1, min(self.workers, len(usable)))
        store = sum(v.store_bytes for v in usable)
        size = f"{store / 1e9:.2f} GB" if store >= 1e9 else f"{store / 1e6:.1f} MB"
        lines.append(f"estimate on this machine: prep ≈ {_duration(seconds)} with {self.workers} worker(s), "
                     f"store ≈ {size}  (checked in {self.wall_s:.1f} s)")
        return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _timing_sample(path: Path, rows: list[Row], info: VideoInfo, quality: int) -> tuple[float, float, float]:
    """``(s per decoded frame, s per crop, JPEG bytes per crop)`` from the first frames of the file."""
    box = rows[0].box
    pixels = (box[0] * info.width, box[1] * info.height, box[2] * info.width, box[3] * info.height)
    started = time.perf_counter()
    with closing(decode(path, ("gray",), with_audio=False)) as frames:
        grays = [gray for _, (gray,) in islice(frames, TIMED_FRAMES)]
    if not grays:
        raise MediaError(f"{path}: no decodable video frames")
    decode_s = (time.perf_counter() - started) / len(grays)
    started = time.perf_counter()
    sizes = [len(encode_crop(face_crop(gray, pixels)[0], quality)) for gray in grays]
    return decode_s, (time.perf_counter() - started) / len(grays), float(np.mean(sizes))


def check_video(video_id: str, rows: list[Row], path: Path, config: PrepConfig) -> VideoCheck:
    """Probe one video and estimate what prep will spend on it; ``problem`` says why it cannot be used."""
    stamps = [r.timestamp for r in rows]
    tracks = plan_tracks(rows, config.settings.fps)
    result = VideoCheck(video_id, path, len(rows), min(stamps), max(stamps), sum(len(t.times) for t in tracks))
    try:
        result.info = info = probe(path)
        if not info.has_audio:
            raise MediaError(f"{path}: has no audio stream")
        decode_s, crop_s, jpeg_bytes = _timing_sample(path, rows, info, config.settings.jpeg_quality)
    except MediaError as err:
        result.problem = str(err)
        return result
    if info.duration:
        result.past_end = [r for r in rows if r.timestamp > info.duration + 0.5 / info.fps]
    if config.seek:  # what prep decodes: the annotated span, its margins, the keyframe pre-roll of the seek
        span = result.last - result.first + 2 * SPAN_MARGIN_S + KEYFRAME_PREROLL_S
    else:
        span = info.duration or result.last + SPAN_MARGIN_S
    result.seconds = span * info.fps * decode_s + result.face_frames * crop_s
    result.store_bytes = result.face_frames * (jpeg_bytes + AUDIO_BYTES_PER_FRAME)
    return result


def check(config: PrepConfig) -> CheckReport:
    """The pre-flight of ``prepare(config)``: nothing is written."""
    started = time.perf_counter()
    plan = plan_prep(config)
    report = CheckReport(videos_asked=plan.asked, workers=config.workers)
    report.problems = [str(p) for p in plan.problems]
    for video_id, (rows, path) in plan.videos.items():
        result = check_video(video_id, rows, path, config)
        report.videos.append(result)
        if result.problem is not None:
            first = rows[0]
            report.problems.append(str(Problem(first.source, first.line,
                                               f"{result.problem}; {len(rows)} rows of {video_id} skipped")))
        elif result.past_end:
            late = min(result.past_end, key=lambda r: r.timestamp)
            report.problems.append(str(Problem(
                late.source, late.line, f"timestamp {late.timestamp_text} is past the end of {path} "
                                        f"({result.info.duration:.2f} s): {len(result.past_end)} rows from here on "
                                        f"skipped")))
    report.videos.sort(key=lambda v: v.video_id)
    report.wall_s = time.perf_counter() - started
    return report
