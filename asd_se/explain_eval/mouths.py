"""Mouth boxes: the ground truth the localisation metrics of explain-eval compare maps with, found beside
the annotations the store was prepared from and mapped onto each face crop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asd_se.core.annotations import mouth_box_sidecar, read_box_file
from asd_se.core.ava import ava_key
from asd_se.core.crop import crop_region
from asd_se.core.errors import InputError
from data_prep.store import TrackMeta, TrackStore


@dataclass
class MouthBoxes:
    """Mouth boxes by annotation key (normalised ``(x1, y1, x2, y2)``), the files they came from, and the rows
    of those files that were skipped."""

    boxes: dict = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_mouth_boxes(store: TrackStore, split: str, given: Path | None = None) -> MouthBoxes:
    """The mouth boxes of ``given``, or else of the sidecars of the annotation CSVs the store was prepared
    from (``mouth_box_sidecar``: the synthetic set has them; AVA has none). A given file without one usable
    box is an error; finding none is not (pointing and mouth energy are then not measured)."""
    paths = [Path(given)] if given else [p for p in map(mouth_box_sidecar, store.annotation_sources(split))
                                         if p.is_file()]
    found = MouthBoxes(sources=paths)
    for path in paths:
        boxes, problems = read_box_file(path)
        found.boxes.update(boxes)
        found.problems += [str(p) for p in problems]
    if given and not found.boxes:
        raise InputError(f"{given}: no usable mouth boxes" + (f" ({found.problems[0]})" if found.problems else ""))
    return found


def mouth_boxes_on_crops(meta: TrackMeta, mouths: dict, frame_size: tuple[int, int], crop_size: int,
                         crop: str = "asd-se") -> dict[int, np.ndarray]:
    """Track frame -> ``(5,)``: the mouth box in crop pixels (crops of the ``crop`` style) and the crop's pixels
    per pixel of the original frame (what scales a tolerance given in original pixels), for the annotation
    rows that have one."""
    width, height = frame_size
    scale = np.array([width, height, width, height], np.float64)
    found = {}
    for stamp, box, frame in zip(meta.rows.timestamps, meta.rows.boxes, meta.rows.frames):
        mouth = mouths.get(ava_key(meta.video_id, stamp, meta.entity_id))
        if mouth is None:
            continue
        region = crop_region(tuple(np.clip(box, 0, 1) * scale), crop)
        origin = np.array([region.x0, region.y0, region.x0, region.y0], np.float64)
        zoom = crop_size / region.side
        found[frame] = np.append((np.array(mouth) * scale - origin) * zoom, zoom)
    return found
