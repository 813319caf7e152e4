"""AVA-ActiveSpeaker / WASD annotation CSVs: reading and validating, row by row.

Two layouts are read identically:
  - official, headerless: ``video_id, frame_timestamp, x1, y1, x2, y2, label, entity_id``
  - the "orig" CSVs TalkNet/ASC/WASD distribute: a header line naming those columns plus ``label_id, instance_id``
A bad row becomes a ``Problem`` naming file and line; the good rows are still returned.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from asd_se.core.ava import LABELS, Key, ava_key
from asd_se.core.errors import InputError
from asd_se.core.fsio import is_safe_id

COLUMNS = ("video_id", "frame_timestamp", "entity_box_x1", "entity_box_y1", "entity_box_x2", "entity_box_y2",
           "label", "entity_id")
ORIG_EXTRA = ("label_id", "instance_id")
MAX_TIMESTAMP = 86_400.0  # s: a day; AVA's movies are 30 minutes, a larger time is a broken row, not a video
BOX_TOLERANCE = 0.01  # AVA boxes sometimes overshoot [0, 1] by rounding; clip within this, reject beyond
MOUTH_BOX_FOLDER = "mouth_boxes"  # beside the annotation folder, never in it: annotations/*.csv stays annotations
MOUTH_BOX_COLUMNS = 7  # video_id, frame_timestamp, entity_id, x1, y1, x2, y2


@dataclass(frozen=True)
class Row:
    """One annotation row. ``timestamp_text`` is kept verbatim so predictions join back on the exact key, and
    ``box`` unclipped (the official evaluation checks prediction boxes against these within 1e-9)."""

    video_id: str
    timestamp: float
    timestamp_text: str
    box: tuple[float, float, float, float]
    label: str
    entity_id: str
    split: str
    source: str
    line: int

    @property
    def key(self) -> Key:
        return ava_key(self.video_id, self.timestamp, self.entity_id)


@dataclass(frozen=True)
class Problem:
    """Something skipped, and where: ``file:line: message`` (line 0 for the whole file)."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}" if self.line else f"{self.source}: {self.message}"


def split_name(path: Path) -> str:
    """The split a CSV holds, from its name (``ava_activespeaker_train_augmented.csv`` -> ``train``)."""
    lowered = path.stem.lower()
    for split in ("train", "val", "test"):
        if split in lowered:
            return split
    return path.stem


def mouth_box_sidecar(annotation_csv: Path) -> Path:
    """Where a dataset keeps the mouth boxes of an annotation CSV: ``ROOT/annotations/val.csv`` ->
    ``ROOT/mouth_boxes/val.csv``."""
    annotation_csv = Path(annotation_csv)
    return annotation_csv.parent.parent / MOUTH_BOX_FOLDER / annotation_csv.name


def _looks_like_mouth_boxes(cells: list[str]) -> bool:
    """A mouth-box sidecar row (7 cells, timestamp and box numeric) rather than an annotation row."""
    if len(cells) != MOUTH_BOX_COLUMNS:
        return False
    try:
        [float(cells[1]), *(float(v) for v in cells[3:7])]
    except ValueError:
        return False
    return True


def _parse_row(cells: list[str], where: tuple[str, int], split: str) -> Row | str:
    """A Row, or the reason the cells are not one."""
    video_id, ts_text, *box_text, label, entity_id = (c.strip() for c in cells)
    for name, value in (("video_id", video_id), ("entity_id", entity_id)):
        if not is_safe_id(value):
            return f"{name} {value!r} has characters not allowed in an id (path separators, '..', spaces)"
    try:
        timestamp = float(ts_text)
        box = [float(v) for v in box_text]
    except ValueError:
        return f"non-numeric timestamp or box: {ts_text!r}, {box_text}"
    if not math.isfinite(timestamp) or not 0 <= timestamp <= MAX_TIMESTAMP:
        return f"timestamp {ts_text!r} is not a time between 0 and {MAX_TIMESTAMP:.0f} s (24 h)"
    if not all(math.isfinite(v) for v in box):
        return f"box {box_text} has NaN or infinite values"
    if any(v < -BOX_TOLERANCE or v > 1 + BOX_TOLERANCE for v in box):
        return f"box {box_text} is outside the normalised range [0, 1]"
    x1, y1, x2, y2 = (min(max(v, 0.0), 1.0) for v in box)
    if x2 <= x1 or y2 <= y1:
        return f"box {box_text} is empty (needs x2 > x1 and y2 > y1)"
    if label not in LABELS:
        return f"unknown label {label!r} (expected one of {', '.join(LABELS)})"
    return Row(video_id, timestamp, ts_text, tuple(box), label, entity_id, split, *where)


def read_csv(path: Path) -> tuple[list[Row], list[Problem]]:
    """Every valid row of one CSV and a Problem for every row (or header) that is not."""
    path = Path(path)
    source, split = str(path), split_name(path)
    rows: list[Row] = []
    problems: list[Problem] = []
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # -sig: a byte-order mark is not part of row 1
    except OSError as err:
        return [], [Problem(source, 0, f"cannot read ({err.strerror})")]
    with handle:
        reader = csv.reader(handle)
        order = list(range(len(COLUMNS)))
        width = len(COLUMNS)
        try:
            for cells in reader:
                line = reader.line_num
                if not cells or all(not c.strip() for c in cells):
                    continue
                if not rows and not problems and _looks_like_mouth_boxes(cells):
                    return [], [Problem(source, 0, "looks like a mouth-box sidecar (video_id, timestamp, entity_id, "
                                                   "box), not annotations: skipped")]
                if line == 1 and cells[0].strip() == "video_id":
                    header = [c.strip() for c in cells]
                    missing = [c for c in COLUMNS if c not in header]
                    unknown = [c for c in header if c not in COLUMNS + ORIG_EXTRA]
                    if missing or unknown:
                        return [], [Problem(source, 1, f"header lacks columns {missing} / has unknown columns "
                                                       f"{unknown}; whole file skipped")]
                    order, width = [header.index(c) for c in COLUMNS], len(header)
                    continue
                if len(cells) != width:
                    problems.append(Problem(source, line, f"expected {width} columns, found {len(cells)}"))
                    continue
                parsed = _parse_row([cells[i] for i in order], (source, line), split)
                if isinstance(parsed, str):
                    problems.append(Problem(source, line, parsed))
                else:
                    rows.append(parsed)
        except (csv.Error, UnicodeDecodeError) as err:
            problems.append(Problem(source, reader.line_num, f"unreadable CSV from here on ({err})"))
    return rows, problems


def csv_paths(paths: list[Path]) -> list[Path]:
    """The CSV files named, with folders expanded to the CSVs inside them (AVA ships val as one per video)."""
    found = []
    for path in map(Path, paths):
        found.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return found


def require_annotations(paths: list[Path]) -> list[Path]:
    """The CSV files of ``paths`` (see ``csv_paths``), refusing (InputError naming it) a path that is missing,
    a folder without CSVs, or an empty file: a command that reads annotations stops before writing anything."""
    for path in map(Path, paths):
        if not path.exists():
            raise InputError(f"{path}: no such annotation file or folder")
        if path.is_dir() and not any(path.glob("*.csv")):
            raise InputError(f"{path}: folder holds no annotation .csv files")
        if path.is_file() and not path.read_bytes().strip(b"\xef\xbb\xbf \r\n\t"):
            raise InputError(f"{path}: annotation file is empty")
    return csv_paths(paths)


def read_annotations(paths: list[Path]) -> tuple[list[Row], list[Problem]]:
    """All rows of all CSVs; a row repeating an earlier row's key is a Problem, the first one is kept."""
    rows: list[Row] = []
    problems: list[Problem] = []
    seen: dict[Key, Row] = {}
    for path in csv_paths(paths):
        file_rows, file_problems = read_csv(path)
        problems.extend(file_problems)
        for row in file_rows:
            first = seen.setdefault(row.key, row)
            if first is not row:
                key = f"({row.video_id}, {row.timestamp_text}, {row.entity_id})"
                problems.append(Problem(row.source, row.line, f"duplicate of {first.source}:{first.line} {key}"))
            else:
                rows.append(row)
    return rows, problems


def read_box_file(path: Path) -> tuple[dict[Key, tuple[float, ...]], list[Problem]]:
    """A box per annotation key, e.g. the synthetic set's ``mouth_boxes/<split>.csv``: ``video_id, frame_timestamp,
    entity_id, x1, y1, x2, y2`` (normalised; a header line is allowed). Keys as ``Row.key``."""
    path = Path(path)
    boxes: dict[Key, tuple[float, ...]] = {}
    problems: list[Problem] = []
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except OSError as err:
        return {}, [Problem(str(path), 0, f"cannot read ({err.strerror})")]
    with handle:
        reader = csv.reader(handle)
        for cells in reader:
            if not cells or (reader.line_num == 1 and cells[0].strip() == "video_id"):
                continue
            try:
                if len(cells) != MOUTH_BOX_COLUMNS:
                    raise ValueError(f"expected {MOUTH_BOX_COLUMNS} columns, found {len(cells)}")
                box = tuple(float(v) for v in cells[3:7])
                if not all(math.isfinite(v) for v in box) or box[0] >= box[2] or box[1] >= box[3]:
                    raise ValueError(f"not a box: {cells[3:7]}")
                boxes[ava_key(cells[0].strip(), cells[1], cells[2].strip())] = box
            except ValueError as err:
                problems.append(Problem(str(path), reader.line_num, str(err)))
    return boxes, problems
