"""``asd-se synth``: write a synthetic dataset laid out like AVA-ActiveSpeaker.

    OUT/videos/<video_id>.mp4                       H.264 + AAC
    OUT/annotations/{train,val}.csv                 official headerless AVA format
    OUT/mouth_boxes/{train,val}.csv                 sidecar: video_id, frame_timestamp, entity_id, mouth box

Rerunning skips videos already written (they are deterministic), so a killed run loses nothing.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from asd_se.core.annotations import mouth_box_sidecar
from asd_se.core.ava import LABELS
from asd_se.core.fsio import atomic_path
from asd_se.core.media import Mp4Writer
from asd_se.core.parallel import parallel_map
from asd_se.core.progress import with_progress
from data_prep.synth.plan import SynthRow, VideoSpec, annotation_rows, plan_scene
from data_prep.synth.render import render_audio, render_frames

log = logging.getLogger(__name__)

FRAME_RATES = (Fraction(25), Fraction(30), Fraction(30000, 1001), Fraction(24), Fraction(15), Fraction(10))
FRAME_SIZES = ((640, 360), (480, 270), (427, 241), (512, 288), (353, 287), (640, 480))
AUDIO_FORMATS = ((16000, 1), (22050, 2), (44100, 1), (48000, 2))


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


def video_specs(config: SynthConfig) -> list[tuple[VideoSpec, str]]:
    """``(spec, split)`` for every video: frame rates, sizes and audio formats cycle so every set mixes them."""
    specs = []
    for index in range(config.videos):
        width, height = config.size or FRAME_SIZES[index % len(FRAME_SIZES)]
        fps = Fraction(config.fps).limit_denominator(1001) if config.fps else FRAME_RATES[index % len(FRAME_RATES)]
        rate, channels = AUDIO_FORMATS[index % len(AUDIO_FORMATS)]
        is_val = config.videos > 1 and (index % config.val_every == config.val_every - 1
                                        or index == config.videos - 1 and config.videos < config.val_every)
        spec = VideoSpec(f"synth_{config.seed:03d}_{index:03d}", width, height, fps, config.minutes * 60.0,
                         rate, channels, seed=config.seed * 100_003 + index, face_counts=config.face_counts)
        specs.append((spec, "val" if is_val else "train"))
    return specs


def write_video(spec: VideoSpec, path: Path) -> None:
    """Render one planned video to ``path`` (atomically)."""
    plan = plan_scene(spec)
    audio = render_audio(plan)
    with Mp4Writer(path, spec.width, spec.height, spec.fps, audio_rate=spec.audio_rate,
                   audio_channels=spec.audio_channels) as writer:
        for image in render_frames(plan):
            writer.write_frame(image)
        block = spec.audio_rate  # one second per audio frame keeps PyAV's call count low
        for first in range(0, audio.shape[1], block):
            writer.write_audio(audio[:, first:first + block])


def _make_one(job: tuple[VideoSpec, Path]) -> list[SynthRow]:
    spec, path = job
    if not path.exists():
        write_video(spec, path)
    return annotation_rows(plan_scene(spec))


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)


def make_dataset(out_dir: Path, config: SynthConfig, workers: int = 1) -> dict[str, int]:
    """Write the whole dataset under ``out_dir``; returns counts for the summary."""
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    specs = video_specs(config)
    jobs = [(spec, out_dir / "videos" / f"{spec.video_id}.mp4") for spec, _ in specs]
    results = list(with_progress(parallel_map(_make_one, jobs, workers), "synth videos", "video", len(jobs)))
    counts = {"videos": len(specs), "rows": 0}
    for split in ("train", "val"):
        chosen = [rows for (spec, s), rows in zip(specs, results) if s == split]
        flat = [row for rows in chosen for row in rows]
        annotations = out_dir / "annotations" / f"{split}.csv"
        _write_csv(annotations,
                   [[r.video_id, r.timestamp, *(f"{v:.4f}" for v in r.box), r.label, r.entity_id] for r in flat])
        _write_csv(mouth_box_sidecar(annotations),
                   [[r.video_id, r.timestamp, r.entity_id, *(f"{v:.4f}" for v in r.mouth_box)] for r in flat])
        counts[f"{split}_videos"] = len(chosen)
        counts[f"{split}_rows"] = len(flat)
        counts["rows"] += len(flat)
        for label in LABELS:
            counts[f"{split}_{label}"] = sum(r.label == label for r in flat)
    return counts
