"""``asd-se synth``: write a synthetic dataset laid out like AVA-ActiveSpeaker.

    OUT/videos/<video_id>.mp4                       H.264 + AAC (or mkv/webm, VP9/MPEG-4, Opus/Vorbis)
    OUT/annotations/{train,val}.csv                 official headerless AVA format
    OUT/mouth_boxes/{train,val}.csv                 sidecar: video_id, frame_timestamp, entity_id, mouth box

Rerunning skips videos already written (they are deterministic), so a killed run loses nothing.
Like AVA's movies, a video can hold more than its annotations: ``lead``/``tail`` seconds of another,
unannotated scene around the annotated clip, and a container start time other than 0; the annotation
timestamps are then shifted to where the clip lies in the file, as a reader of the file times its frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from fractions import Fraction
from itertools import chain, islice
from pathlib import Path

import numpy as np

from asd_se.core.annotations import mouth_box_sidecar
from asd_se.core.ava import LABELS
from asd_se.core.fsio import write_csv_atomic
from asd_se.core.media import probe
from asd_se.core.parallel import parallel_map
from asd_se.core.progress import with_progress
from asd_se.core.writer import Encoding, VideoWriter
from data_prep.synth.plan import SynthRow, VideoSpec, annotation_rows, plan_scene
from data_prep.synth.render import render_audio, render_frames

log = logging.getLogger(__name__)

FRAME_RATES = (Fraction(25), Fraction(30), Fraction(30000, 1001), Fraction(24), Fraction(15), Fraction(10))
FRAME_SIZES = ((640, 360), (480, 270), (427, 241), (512, 288), (353, 287), (640, 480))
AUDIO_FORMATS = ((16000, 1), (22050, 2), (44100, 1), (48000, 2))
PADDING_SEED = 7_919  # the unannotated scene around a clip is another scene's


@dataclass(frozen=True)
class Packaging:
    """How each video is stored: container and codecs, audio channels, unannotated padding, start time."""

    encoding: Encoding = Encoding()
    channels: int | None = None  # every video's audio channel count (default: 1 or 2, varied)
    lead: float = 0.0  # seconds of unannotated scene before the annotated clip
    tail: float = 0.0  # ... and after it
    start_time: float = 0.0  # the file's first timestamp, s

    def check(self) -> None:
        """Raises ValueError for settings no file can have."""
        self.encoding.check()
        if self.channels is not None and self.channels not in (1, 2, 6):
            raise ValueError(f"channels {self.channels}: choose 1, 2 or 6")
        if min(self.lead, self.tail, self.start_time) < 0:
            raise ValueError("lead, tail and start time are seconds >= 0")


@dataclass(frozen=True)
class SynthConfig:
    """How big and how varied the synthetic set is."""

    videos: int = 16
    minutes: float = 0.5
    seed: int = 0
    val_every: int = 4
    size: tuple[int, int] | None = None  # fixed (width, height) instead of the varied sizes
    fps: float | None = None  # fixed frame rate instead of the varied ones
    face_counts: tuple[int, ...] = (1, 2, 3)
    packaging: Packaging = field(default_factory=Packaging)
    difficulty: str = "standard"  # difficulty.py: easy | standard | hard


def video_specs(config: SynthConfig) -> list[tuple[VideoSpec, str]]:
    """``(spec, split)`` for every video: frame rates, sizes and audio formats cycle so every set mixes them."""
    specs = []
    for index in range(config.videos):
        width, height = config.size or FRAME_SIZES[index % len(FRAME_SIZES)]
        fps = Fraction(config.fps).limit_denominator(1001) if config.fps else FRAME_RATES[index % len(FRAME_RATES)]
        rate, channels = AUDIO_FORMATS[index % len(AUDIO_FORMATS)]
        channels = config.packaging.channels or channels
        is_val = config.videos > 1 and (index % config.val_every == config.val_every - 1
                                        or index == config.videos - 1 and config.videos < config.val_every)
        spec = VideoSpec(f"synth_{config.seed:03d}_{index:03d}", width, height, fps, config.minutes * 60.0,
                         rate, channels, seed=config.seed * 100_003 + index, face_counts=config.face_counts,
                         difficulty=config.difficulty)
        specs.append((spec, "val" if is_val else "train"))
    return specs


def write_video(spec: VideoSpec, path: Path, packaging: Packaging = Packaging()) -> None:
    """Render one planned video to ``path`` (atomically), inside its padding."""
    plan = plan_scene(spec)
    audio = render_audio(plan)
    lead_frames, tail_frames = (int(round(s * spec.fps)) for s in (packaging.lead, packaging.tail))
    padding_frames, padding_audio = iter(()), np.zeros((spec.audio_channels, 0), np.float32)
    if lead_frames + tail_frames:
        padding = plan_scene(replace(spec, seed=spec.seed + PADDING_SEED,
                                     duration=float((lead_frames + tail_frames + 1) / spec.fps)))
        padding_frames, padding_audio = render_frames(padding), render_audio(padding)
    lead_samples = int(round(lead_frames / spec.fps * spec.audio_rate))
    with VideoWriter(path, spec.width, spec.height, spec.fps, audio_rate=spec.audio_rate,
                     audio_channels=spec.audio_channels, encoding=packaging.encoding,
                     start=packaging.start_time, crf=plan.extras.crf) as writer:
        for image in chain(islice(padding_frames, lead_frames), render_frames(plan),
                           islice(padding_frames, tail_frames)):
            writer.write_frame(image)
        tail_samples = int(round(tail_frames / spec.fps * spec.audio_rate))
        track = np.concatenate([padding_audio[:, :lead_samples], audio,
                                padding_audio[:, lead_samples:lead_samples + tail_samples]], axis=1)
        block = spec.audio_rate  # one second per audio frame keeps PyAV's call count low
        for first in range(0, track.shape[1], block):
            writer.write_audio(track[:, first:first + block])


def _make_one(job: tuple[VideoSpec, Path, Packaging]) -> list[SynthRow]:
    spec, path, packaging = job
    if not path.exists():
        write_video(spec, path, packaging)
    # where the clip's first frame lies, as a reader of the file times it (from the container's start)
    shift = int(round(packaging.lead * spec.fps)) / float(spec.fps) + probe(path).video_start
    return [replace(row, timestamp=f"{float(row.timestamp) + shift:.3f}") if shift else row
            for row in annotation_rows(plan_scene(spec))]


def make_dataset(out_dir: Path, config: SynthConfig, workers: int = 1) -> dict[str, int]:
    """Write the whole dataset under ``out_dir``; returns counts for the summary."""
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    specs = video_specs(config)
    config.packaging.check()
    suffix = config.packaging.encoding.container
    jobs = [(spec, out_dir / "videos" / f"{spec.video_id}.{suffix}", config.packaging) for spec, _ in specs]
    results = list(with_progress(parallel_map(_make_one, jobs, workers), "synth videos", "video", len(jobs)))
    counts = {"videos": len(specs), "rows": 0}
    for split in ("train", "val"):
        chosen = [rows for (spec, s), rows in zip(specs, results) if s == split]
        flat = [row for rows in chosen for row in rows]
        annotations = out_dir / "annotations" / f"{split}.csv"
        write_csv_atomic(annotations,
                   [[r.video_id, r.timestamp, *(f"{v:.4f}" for v in r.box), r.label, r.entity_id] for r in flat])
        write_csv_atomic(mouth_box_sidecar(annotations),
                   [[r.video_id, r.timestamp, r.entity_id, *(f"{v:.4f}" for v in r.mouth_box)] for r in flat])
        counts[f"{split}_videos"] = len(chosen)
        counts[f"{split}_rows"] = len(flat)
        counts["rows"] += len(flat)
        for label in LABELS:
            counts[f"{split}_{label}"] = sum(r.label == label for r in flat)
    return counts
