"""An annotation CSV's entities as tracks on the model's 25 fps grid: what prep cuts into the store and what
render's ``--annotations`` mode scores, planned the same way for both."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from asd_se.core.annotations import Row
from asd_se.core.boxes import interpolate_boxes
from asd_se.core.sampling import sample_grid


@dataclass
class TrackPlan:
    """A track to cut: its rows (sorted by time), 25 fps sample times ``(T,)`` and boxes ``(T, 4)``
    (normalised, clipped to the frame)."""

    entity_id: str
    rows: list[Row]
    times: np.ndarray
    boxes: np.ndarray

    def row_frames(self, fps: int) -> np.ndarray:
        """``(R,)`` the 25 fps frame of each row."""
        return np.round((np.array([r.timestamp for r in self.rows]) - self.times[0]) * fps).astype(int)


def plan_tracks(rows: list[Row], fps: int) -> list[TrackPlan]:
    """One track per entity: samples every 1/fps s from its first to its last row, boxes interpolated."""
    by_entity: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_entity[row.entity_id].append(row)
    plans = []
    for entity_id in sorted(by_entity):
        entity_rows = sorted(by_entity[entity_id], key=lambda r: r.timestamp)
        stamps = np.array([r.timestamp for r in entity_rows])
        times = sample_grid(stamps[0], stamps[-1], fps)
        boxes = interpolate_boxes(times, stamps, np.clip([r.box for r in entity_rows], 0.0, 1.0))
        plans.append(TrackPlan(entity_id, entity_rows, times, boxes))
    return plans
