"""``asd-se prep``: videos + AVA-format CSVs -> track store. Resumable, parallel, shardable.

A video is the unit of work. Its files are written atomically and its manifest last, carrying a fingerprint
of its rows and the settings; a rerun skips every video whose manifest matches, so a run killed at any
moment (SIGKILL included) is finished by running it again, and a rerun on a complete store does nothing.
``--shard I/N`` takes every N-th video; the index is built by the run (or ``asd-se merge``) that sees all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asd_se.core.annotations import Problem, Row, read_annotations
from asd_se.core.errors import EXIT_OK, EXIT_SKIPPED, InputError, StoreError
from asd_se.core.fsio import atomic_path, require_folder, write_json_atomic
from asd_se.core.parallel import parallel_map
from asd_se.core.progress import with_progress
from data_prep.extract import extract_video
from data_prep.store import StoreSettings, TrackStore

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov")


@dataclass(frozen=True)
class PrepConfig:
    """What ``asd-se prep`` was asked to do."""

    annotations: tuple[Path, ...]
    videos: Path
    out: Path
    workers: int = 1
    shard: tuple[int, int] = (0, 1)
    settings: StoreSettings = field(default_factory=StoreSettings)
    seek: bool = True  # decode each video's annotated span only (False: from its first frame)


@dataclass
class PrepSummary:
    """What the store holds for the videos asked for, and what was skipped."""

    videos_asked: int = 0
    videos_done: int = 0
    videos_prepared_now: int = 0
    tracks: int = 0
    face_frames: int = 0
    rows: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    index_tracks: int | None = None
    videos_not_indexed: int = 0  # finished videos in the store that these annotations no longer name
    turned: int = 0  # videos stored turned (a display matrix), decoded upright

    @property
    def exit_code(self) -> int:
        return EXIT_SKIPPED if self.problems else EXIT_OK

    def render(self) -> str:
        """A human-readable summary."""
        lines = [f"videos: {self.videos_done}/{self.videos_asked} in store ({self.videos_prepared_now} prepared now)",
                 f"tracks: {self.tracks}, face-frames at 25 fps: {self.face_frames}",
                 "rows kept: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rows.items()))]
        if self.index_tracks is not None:
            lines.append(f"index: {self.index_tracks} tracks")
        if self.turned:
            lines.append(f"{self.turned} video(s) stored turned (display matrix): decoded upright, boxes read on "
                         f"the upright frames")
        if self.videos_not_indexed:
            lines.append(f"{self.videos_not_indexed} video(s) in the store are not in these annotations: "
                         "kept on disk, left out of the index")
        lines.extend(group_problems(self.problems, "prep_report.json"))
        return "\n".join(lines)


def group_problems(problems: list[str], full_list: str | None = None, shown: int = 20) -> list[str]:
    """Summary lines of what was (or would be) skipped: counts by kind, then the first ``shown`` problems."""
    if not problems:
        return []
    reasons = Counter(_reason(p) for p in problems)
    lines = [f"rows/videos skipped: {len(problems)} problem(s) — " +
             "; ".join(f"{n} × {r}" for r, n in reasons.most_common())]
    lines.extend(f"  {p}" for p in problems[:shown])
    if len(problems) > shown:
        lines.append(f"  ... {len(problems) - shown} more" + (f" in {full_list}" if full_list else ""))
    return lines


def _reason(problem: str) -> str:
    """The kind of a problem message, for grouping in the summary."""
    text = problem.split(": ", 1)[-1]
    for marker in ("duplicate", "past the end", "columns", "unknown label", "outside", "NaN", "empty",
                   "characters", "no video file", "no audio", "not a readable", "corrupt",
                   "ends in an error", "non-numeric", "timestamp"):
        if marker in text:
            return marker
    return text[:40]


# Where each dataset keeps its CSVs and videos under a root folder (README: "Getting AVA and WASD").
LAYOUTS = {"ava": ("csv", "videos"), "wasd": ("csv", "videos"), "synth": ("annotations", "videos"),
           "talkset": ("annotations", "videos")}


def dataset_layout(dataset: str, root: Path) -> tuple[tuple[Path, ...], Path]:
    """``(annotation paths, video folder)`` of a dataset laid out as the README describes."""
    annotations, videos = LAYOUTS[dataset]
    return (Path(root) / annotations,), Path(root) / videos


def fingerprint(rows: list[Row], settings: StoreSettings, video: Path) -> str:
    """Changes when the video's rows, the settings or the video file change."""
    digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
    stat = video.stat()
    digest.update(f"{video.name}|{stat.st_size}".encode())
    for row in sorted(rows, key=lambda r: (r.entity_id, r.timestamp)):
        digest.update(f"{row.timestamp_text}|{row.entity_id}|{row.box}|{row.label}|{row.split}".encode())
    return digest.hexdigest()


def find_videos(folder: Path) -> dict[str, Path]:
    """``{video_id: path}`` of the video files in ``folder`` (by file stem)."""
    folder = Path(folder)
    require_folder(folder, "video folder")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}


def _prepare_one(job: tuple[Path, str, list[Row], StoreSettings, str, bool]) -> dict:
    """Worker: cut one video's tracks and store them. Returns the stored manifest."""
    root, video_path, rows, settings, stamp, seek = job
    store = TrackStore.open(root)
    tracks, problems, facts = extract_video(Path(video_path), rows, settings, seek)
    manifest = {"video_id": rows[0].video_id, "source": Path(video_path).name, "fingerprint": stamp,
                "annotations": sorted({str(Path(r.source).resolve()) for r in rows}),
                "facts": facts, "problems": [str(p) for p in problems]}
    if not tracks:  # nothing usable: no manifest, so the next run tries again (after the user fixes it)
        return {**manifest, "tracks": [], "stored": False}
    store.write_video(rows[0].video_id, tracks, manifest)
    return {**store.manifest(rows[0].video_id), "stored": True}


@dataclass
class PrepPlan:
    """What a prep run over ``config`` will work on: each video's rows and file, and the problems found so far
    (bad CSV rows; annotated videos without a file)."""

    asked: int  # videos the annotations name (this shard's)
    videos: dict[str, tuple[list[Row], Path]]  # those with a file: rows, path
    problems: list[Problem]
    rows: int = 0  # usable rows in all the annotations (every shard's)


def plan_prep(config: PrepConfig) -> PrepPlan:
    """Read the annotations and find the videos of ``config`` (its shard only). Prep and ``--check`` start here."""
    rows, problems = read_annotations(list(config.annotations))
    by_video: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_video[row.video_id].append(row)
    files = find_videos(config.videos)
    index, count = config.shard
    videos, asked = {}, sorted(by_video)[index::count]
    for video_id in asked:
        video_rows = by_video[video_id]
        if video_id in files:
            videos[video_id] = (video_rows, files[video_id])
        else:
            first = video_rows[0]
            problems.append(Problem(first.source, first.line, f"no video file for {video_id} in {config.videos}; "
                                                              f"{len(video_rows)} rows skipped"))
    return PrepPlan(len(asked), videos, problems, len(rows))


def prepare(config: PrepConfig) -> PrepSummary:
    """Run prep; returns the summary (its ``exit_code`` says whether anything was skipped)."""
    plan = plan_prep(config)
    problems = plan.problems
    named = ", ".join(map(str, config.annotations))
    if not plan.rows:  # refused before the store exists: an empty store would look like a finished one
        raise InputError(f"{named}: no usable annotation rows" + (f" ({problems[0]}; {len(problems)} problem(s))"
                                                                    if problems else ""))
    if plan.asked and not plan.videos:
        raise InputError(f"{config.videos}: holds none of the {plan.asked} videos {named} annotate "
                         f"(looked for <video_id>{{{','.join(VIDEO_SUFFIXES)}}})")
    store = TrackStore.create(config.out, config.settings)
    index, count = config.shard
    if count == 1 and store.remove_partial_files():  # shards may share the folder: only a full run cleans
        log.info("removed partial files left by an interrupted run")
    summary = PrepSummary(videos_asked=plan.asked)
    jobs, manifests = [], []
    for video_id, (video_rows, video_path) in plan.videos.items():
        stamp = fingerprint(video_rows, config.settings, video_path)
        done = store.manifest(video_id)
        if done is not None and done["fingerprint"] == stamp:
            manifests.append(done)
        else:
            jobs.append((store.root, video_path, video_rows, config.settings, stamp, config.seek))
    if jobs:
        log.info("preparing %d videos (%d already in the store)", len(jobs), len(manifests))
        results = parallel_map(_prepare_one, jobs, config.workers)
        for manifest in with_progress(results, "prep videos", "video", len(jobs)):
            if manifest.pop("stored"):
                manifests.append(manifest)
                summary.videos_prepared_now += 1
            else:
                summary.problems.extend(manifest["problems"])
    summary.problems = [str(p) for p in problems] + summary.problems
    for manifest in manifests:
        summary.videos_done += 1
        summary.turned += bool(manifest.get("facts", {}).get("rotation"))
        summary.problems.extend(manifest["problems"])
        for meta in manifest["tracks"]:
            summary.tracks += 1
            summary.face_frames += meta["frames"]
            summary.rows.update(meta["rows"]["labels"])
    if count == 1:  # the index lists exactly the videos of these annotations that are complete
        indexed = {m["video_id"] for m in manifests}
        summary.index_tracks = store.build_index(indexed)
        summary.videos_not_indexed = len({m["video_id"] for m in store.manifests()} - indexed)
    write_json_atomic(store.root / "prep_report.json", {
        "videos_asked": summary.videos_asked, "videos_done": summary.videos_done, "tracks": summary.tracks,
        "face_frames": summary.face_frames, "rows": dict(summary.rows), "problems": summary.problems,
        "shard": list(config.shard)})
    return summary


def merge(out: Path, sources: list[Path]) -> int:
    """Copy finished videos of shard stores into ``out`` (same settings required) and build its index.
    Everything is checked before anything is written: every store opens, all have one set of settings (the
    output's too, where it exists), and no video is finished in two stores with different contents."""
    stores = [TrackStore.open(source) for source in sources]
    settings = stores[0].settings
    if (Path(out) / "store.json").exists():
        settings = TrackStore.open(out).settings
    owners: dict[str, Path] = {}
    for store in stores:
        if store.settings != settings:
            raise StoreError(f"{store.root}: settings {store.settings} differ from {settings} "
                             f"(of {sources[0] if settings == stores[0].settings else out}); nothing was merged")
        for manifest_path in store.manifest_paths():
            first = owners.setdefault(manifest_path.name, manifest_path)
            if first is not manifest_path and first.read_bytes() != manifest_path.read_bytes():
                raise StoreError(f"{manifest_path}: video {manifest_path.stem} is also in {first} with other "
                                 f"tracks; merge one of them only (nothing was merged)")
    target = TrackStore.create(out, settings)
    for manifest_path in owners.values():
        for path in (manifest_path.with_suffix(".npz"), manifest_path):  # npz first: the manifest marks completeness
            destination = target.root / "videos" / path.name
            if destination.exists() and destination.read_bytes() == path.read_bytes():
                continue
            with atomic_path(destination) as tmp:
                shutil.copyfile(path, tmp)
    return target.build_index()
