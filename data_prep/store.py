"""The track store: face tracks at 25 fps as JPEG-in-npz, one file per video, plus one index.

    STORE/store.json                 format version and the settings every crop was made with
    STORE/videos/<stem>.npz          per track ``t<i>``: ``t<i>_jpeg`` (bytes) + ``t<i>_offsets`` (T+1,) +
                                     ``t<i>_audio`` (T * 640,) int16 16 kHz mono aligned to the track's frames
    STORE/videos/<stem>.json         the video's manifest (tracks, row mapping, problems); written LAST, so its
                                     presence means the video is complete
    STORE/index.jsonl                every track of every finished video, sorted: the store's table of contents
    STORE/prep_report.json           the last run's summary and every skipped row with its reason

Each track keeps the exact mapping back to its annotation rows (timestamp text, label, box, 25 fps frame),
so predictions are reported at the annotated timestamps, joined by key.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from asd_se.core.crop import CROP_MARGIN, CROP_SIZE
from asd_se.core.errors import StoreError
from asd_se.core.fsio import atomic_path, inside, require_folder, safe_stem, write_json_atomic, write_text_atomic
from asd_se.core.media import AUDIO_RATE, MODEL_FPS
from data_prep.npz_slices import ArrayLayout, array_layouts, read_slice

STORE_FORMAT = "asd-se-track-store"
STORE_VERSION = 1


@dataclass(frozen=True)
class StoreSettings:
    """How every crop in a store was made; a store never mixes settings."""

    fps: int = MODEL_FPS
    crop_size: int = CROP_SIZE
    crop_margin: float = CROP_MARGIN
    crop: str = "asd-se"  # THE crop's style (core/crop.py): a model is only fed crops of its own style
    audio_rate: int = AUDIO_RATE
    jpeg_quality: int = 90


@dataclass
class TrackRows:
    """A track's original annotation rows: verbatim timestamps, labels, normalised boxes, 25 fps frame."""

    timestamps: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)


@dataclass
class TrackMeta:
    """One track as the index lists it."""

    video_id: str
    entity_id: str
    split: str
    source_fps: float
    start: float  # time (s) of frame 0 in the source video
    frames: int
    labels: list[int]  # (frames,) LABEL_CODES per 25 fps frame
    rows: TrackRows
    file: str
    member: str
    source_size: list[int] = field(default_factory=list)  # [width, height] of the source frames; [] in stores
    # prepared before asd-se recorded it

    @property
    def face_widths(self) -> list[float | None]:
        """Per row: the face's width in pixels of the source frame (None where the size is unknown)."""
        if not self.source_size:
            return [None] * len(self.rows.boxes)
        return [(box[2] - box[0]) * self.source_size[0] for box in self.rows.boxes]

    @property
    def track_id(self) -> str:
        return f"{self.video_id}/{self.entity_id}"

    @classmethod
    def from_dict(cls, data: dict) -> "TrackMeta":
        return cls(**{**data, "rows": TrackRows(**data["rows"])})


@dataclass
class Track:
    """A finished track in memory: meta, JPEG crops ``T x bytes`` and audio ``(T * 640,)`` float32."""

    meta: TrackMeta
    jpegs: list[bytes]
    audio: np.ndarray


def encode_crop(crop: np.ndarray, quality: int) -> bytes:
    """A ``(S, S)`` uint8 crop as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def _settings(path: Path, values) -> StoreSettings:
    """The StoreSettings a header records; StoreError naming the file for unknown keys or wrong types."""
    defaults = StoreSettings()
    if not isinstance(values, dict) or set(values) - set(asdict(defaults)):
        raise StoreError(f"{path}: 'settings' is not a map of {', '.join(asdict(defaults))}")
    for key, value in values.items():
        wanted = type(getattr(defaults, key))
        if not isinstance(value, (int, float) if wanted is float else wanted) or isinstance(value, bool):
            raise StoreError(f"{path}: settings.{key} must be a {wanted.__name__}, not {value!r}")
    return StoreSettings(**values)


class TrackStore:
    """Reads and writes one store folder."""

    def __init__(self, root: Path, settings: StoreSettings):
        self.root = Path(root)
        self.settings = settings
        self._layouts: dict[Path, dict[str, ArrayLayout]] = {}  # per .npz file, read on first use

    @classmethod
    def create(cls, root: Path, settings: StoreSettings | None = None) -> "TrackStore":
        """Open ``root`` for writing, creating it; refuse a store made with other settings or version."""
        root = Path(root)
        settings = settings or StoreSettings()
        if (root / "store.json").exists():
            store = cls.open(root)
            if store.settings != settings:
                raise StoreError(f"{root}: made with {store.settings}, asked for {settings}")
            return store
        (root / "videos").mkdir(parents=True, exist_ok=True)
        write_json_atomic(root / "store.json", {"format": STORE_FORMAT, "version": STORE_VERSION,
                                                "settings": asdict(settings)})
        return cls(root, settings)

    @classmethod
    def open(cls, root: Path) -> "TrackStore":
        """Open an existing store; StoreError if it is not one or was made by an incompatible version."""
        root = Path(root)
        require_folder(root, "track store folder")
        try:
            header = json.loads((root / "store.json").read_text())
        except (OSError, ValueError) as err:
            raise StoreError(f"{root}: not a track store (no readable store.json: {err})") from err
        if not isinstance(header, dict):
            raise StoreError(f"{root / 'store.json'}: not a track store header (not a JSON object)")
        if header.get("format") != STORE_FORMAT or header.get("version") != STORE_VERSION:
            raise StoreError(f"{root}: store format {header.get('format')} v{header.get('version')} is not "
                             f"{STORE_FORMAT} v{STORE_VERSION}; run `asd-se prep` again into a new folder")
        return cls(root, _settings(root / "store.json", header.get("settings")))

    def require_crop(self, crop: str, model: str) -> None:
        """StoreError unless this store's crops were cut in the ``crop`` style the ``model`` was trained on."""
        if self.settings.crop != crop:
            raise StoreError(f"{self.root}: its face crops are of the {self.settings.crop!r} style, but {model} "
                             f"was trained on {crop!r} crops; prepare a store for it with `asd-se prep --crop {crop}`")

    def _paths(self, video_id: str) -> tuple[Path, Path]:
        stem = safe_stem(video_id)
        return inside(self.root / "videos", f"{stem}.npz"), inside(self.root / "videos", f"{stem}.json")

    def manifest(self, video_id: str) -> dict | None:
        """The finished video's manifest, or None if the video is not (completely) in the store."""
        path = self._paths(video_id)[1]
        return json.loads(path.read_text()) if path.exists() else None

    def write_video(self, video_id: str, tracks: list[Track], manifest: dict) -> None:
        """Store a finished video: the npz first, then the manifest that marks it complete."""
        npz_path, json_path = self._paths(video_id)
        arrays: dict[str, np.ndarray] = {}
        metas = []
        for index, track in enumerate(tracks):
            member = f"t{index}"
            arrays[f"{member}_jpeg"] = np.frombuffer(b"".join(track.jpegs), np.uint8)
            arrays[f"{member}_offsets"] = np.cumsum([0] + [len(j) for j in track.jpegs]).astype(np.int64)
            arrays[f"{member}_audio"] = np.clip(track.audio * 32767, -32768, 32767).astype(np.int16)
            track.meta.file, track.meta.member = f"videos/{npz_path.name}", member
            metas.append(asdict(track.meta))
        with atomic_path(npz_path) as tmp:
            np.savez(tmp, **arrays)
        write_json_atomic(json_path, {**manifest, "tracks": metas})

    def remove_partial_files(self) -> int:
        """Delete temporary files a killed writer left behind; call only when no other writer is running."""
        partial = [p for p in (self.root / "videos").glob(".*") if ".part" in p.name]
        for path in partial:
            path.unlink(missing_ok=True)
        return len(partial)

    def manifest_paths(self) -> list[Path]:
        """The finished videos' manifests (temporary files of unfinished writes start with '.')."""
        return sorted(p for p in (self.root / "videos").glob("*.json") if not p.name.startswith("."))

    def manifests(self) -> list[dict]:
        """Every finished video's manifest, sorted by video id."""
        return sorted((json.loads(p.read_text()) for p in self.manifest_paths()), key=lambda m: m["video_id"])

    def annotation_sources(self, split: str | None = None) -> list[Path]:
        """The annotation CSVs (absolute paths, as prep read them) of the finished videos with tracks in
        ``split`` (all when None); empty for stores made before prep recorded them."""
        sources = {path for m in self.manifests() if any(split in (None, t["split"]) for t in m["tracks"])
                   for path in m.get("annotations", [])}
        return sorted(map(Path, sources))

    def build_index(self, video_ids: set[str] | None = None) -> int:
        """Write ``index.jsonl`` from the manifests of ``video_ids`` (all when None), only if it changed;
        returns the number of tracks."""
        chosen = [m for m in self.manifests() if video_ids is None or m["video_id"] in video_ids]
        lines = [json.dumps(meta, sort_keys=True) for m in chosen for meta in m["tracks"]]
        text = "".join(line + "\n" for line in lines)
        index = self.root / "index.jsonl"
        if not index.exists() or index.read_text() != text:
            write_text_atomic(index, text)
        return len(lines)

    def tracks(self, split: str | None = None) -> list[TrackMeta]:
        """The index's tracks, optionally of one split."""
        index = self.root / "index.jsonl"
        if not index.exists():
            raise StoreError(f"{self.root}: has no index.jsonl; finish `asd-se prep` (or `asd-se merge`) first")
        metas = []
        with open(index, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        metas.append(TrackMeta.from_dict(json.loads(line)))
                    except (ValueError, TypeError, KeyError, AttributeError) as err:
                        raise StoreError(f"{index}:{number}: not a track record ({type(err).__name__}: {err}); "
                                         f"rebuild it with `asd-se prep` (or `asd-se merge`)") from None
        return [m for m in metas if split is None or m.split == split]

    def load(self, meta: TrackMeta, start: int = 0, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``[start, start + length)`` of a track: faces ``(L, S, S)`` uint8 and audio ``(L * 640,)`` float32."""
        length = meta.frames - start if length is None else length
        per_frame = self.settings.audio_rate // self.settings.fps
        damaged = f"{self.root / meta.file}: damaged track {meta.track_id}"
        try:
            path = inside(self.root, meta.file)  # an index entry cannot point outside its store
            if path not in self._layouts:
                self._layouts[path] = array_layouts(path)
            layouts = self._layouts[path]
            with open(path, "rb") as handle:  # only the window's bytes: tracks can be minutes long
                bounds = read_slice(handle, layouts[f"{meta.member}_offsets"], start, start + length + 1)
                blob = read_slice(handle, layouts[f"{meta.member}_jpeg"], int(bounds[0]), int(bounds[-1]))
                audio = read_slice(handle, layouts[f"{meta.member}_audio"], start * per_frame,
                                   (start + length) * per_frame)
        except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as err:
            raise StoreError(f"{damaged} ({type(err).__name__}: {err}); prepare the video again") from None
        bounds = bounds - bounds[0]
        faces = [cv2.imdecode(blob[a:b], cv2.IMREAD_GRAYSCALE) for a, b in zip(bounds[:-1], bounds[1:])]
        if len(faces) != length or len(audio) != length * per_frame or any(f is None for f in faces):
            raise StoreError(f"{damaged} (frames {start}-{start + length} cut short); prepare the video again")
        return np.stack(faces), audio.astype(np.float32) / 32768.0
