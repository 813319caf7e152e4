"""THE render document: the JSON ``asd-se render`` writes beside its MP4 (``OUT.json``), its format marker and
version, its compact per-sample maps, and reading one back with clear messages for anything else.

Layout (version 2): the render's summary (input, video_id, fps, width, height, duration_s, settings, notes, timings) and
``tracks``: per track ``track_id``, ``name``, ``frames`` (per source frame: ``frame``, ``time`` s, ``box``
pixels, ``prob``, ``sample`` — the 25 fps model sample it shows — and, with maps, ``region`` ``[x0, y0, side]``
— the square the map covers — ``heatmap_peak``, ``se_channels``), ``maps`` (the explainer's map per sample,
8-bit, base64) and, rendered against annotations, ``truth`` (per annotation row: time s, 1 if speaking).
Version 1 (before maps and segments) is read too; what it lacks is reported.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asd_se.core.errors import InputError

FORMAT = "asd-se render"
VERSION = 2


def encode_maps(maps: np.ndarray) -> dict:
    """``(T, h, w)`` maps in [0, 1] -> ``{"shape", "dtype": "uint8", "base64"}``: 8-bit, within 1/510."""
    quantised = np.round(np.clip(maps, 0.0, 1.0) * 255).astype(np.uint8)
    return {"shape": list(quantised.shape), "dtype": "uint8",
            "base64": base64.b64encode(quantised.tobytes()).decode("ascii")}


def decode_maps(entry: dict) -> np.ndarray:
    """The ``(T, h, w)`` float32 maps in [0, 1] of an ``encode_maps`` entry."""
    data = np.frombuffer(base64.b64decode(entry["base64"]), np.uint8)
    return data.reshape(entry["shape"]).astype(np.float32) / 255.0


@dataclass
class RenderDocument:
    """A render JSON read back: its dict ``data`` and what it lacks (``missing``, one line each)."""

    path: Path
    data: dict
    missing: list[str] = field(default_factory=list)

    @property
    def tracks(self) -> list[dict]:
        return self.data["tracks"]

    @property
    def fps(self) -> float:
        return float(self.data.get("fps") or 25.0)

    @property
    def video_id(self) -> str:
        """The video's id: the annotations' video_id, else the input's file stem (RTTM's file id)."""
        return str(self.data.get("video_id") or Path(str(self.data.get("input", self.path.stem))).stem)

    @property
    def video(self) -> Path:
        """The rendered MP4 beside the JSON (found by name, so a moved output folder still works)."""
        return self.path.with_suffix(".mp4")

    @property
    def media(self) -> list[Path]:
        """The videos a page of this render plays: the input (as recorded) and the rendered MP4."""
        recorded = self.data.get("input")
        return [self.video] + ([Path(recorded)] if isinstance(recorded, str) and recorded else [])


def read_render(path: Path) -> RenderDocument:
    """Read and check a render JSON; InputError naming the file for anything that is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file (give the .json asd-se render wrote beside its MP4)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an asd-se render JSON (the top level is not an object)")
    marker = data.get("format")
    if marker is None and not {"tracks", "checkpoint", "fps"} <= data.keys():
        raise InputError(f"{path}: not an asd-se render JSON (no 'format': {FORMAT!r}; made by another tool?)")
    if marker is not None and marker != FORMAT:
        raise InputError(f"{path}: a {marker!r} file, not an asd-se render JSON")
    version = int(data.get("version", 1))
    if version > VERSION:
        raise InputError(f"{path}: written by a newer asd-se (render JSON version {version}; this one reads "
                         f"up to {VERSION}); update asd-se")
    if not isinstance(data.get("tracks"), list):
        raise InputError(f"{path}: 'tracks' is missing or not a list")
    missing = []
    if version < 2:
        missing.append(f"{path.name}: written by an older asd-se (render JSON version 1): no heatmaps or "
                       f"samples; render the video again for them")
    for number, track in enumerate(data["tracks"]):
        if not isinstance(track, dict) or not isinstance(track.get("frames"), list):
            raise InputError(f"{path}: a track without 'frames' (a damaged file?)")
        for record in track["frames"]:
            problem = _record_problem(record)
            if problem:
                raise InputError(f"{path}: track {track.get('name', number)!r}, frame "
                                 f"{record.get('frame', '?') if isinstance(record, dict) else '?'}: {problem}")
    return RenderDocument(path, data, missing)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _record_problem(record) -> str | None:
    """What is wrong with one frame record of a track (None: nothing)."""
    if not isinstance(record, dict):
        return "a frame record is not an object"
    for key in ("frame", "time", "prob"):
        if not _number(record.get(key)):
            return f"{key!r} is not a finite number ({record.get(key)!r})"
    if not 0.0 <= record["prob"] <= 1.0:
        return f"'prob' {record['prob']!r} is not a probability in [0, 1]"
    box = record.get("box")
    if not (isinstance(box, list) and len(box) == 4 and all(map(_number, box))):
        return f"'box' is not four finite numbers ({box!r})"
    return None
