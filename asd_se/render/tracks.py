"""The faces a render draws when an AVA-format annotation CSV gives them (faces found by detection and tracking:
``asd_se/video/tracks.py``)."""

from __future__ import annotations

import numpy as np

from asd_se.core.annotated_tracks import plan_tracks
from asd_se.core.annotations import Row
from asd_se.core.boxes import interpolate_boxes
from asd_se.core.media import MODEL_FPS
from asd_se.video.tracks import RenderTrack, frame_samples


def annotated_tracks(rows: list[Row], frame_times: np.ndarray, width: int, height: int) -> list[RenderTrack]:
    """One track per entity of an AVA-format CSV's rows for this video, sampled exactly as prep samples
    them: boxes as given (interpolated between rows), entity ids as names, every row mapped to its sample."""
    half_frame = 0.5 * float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 0.02
    scale = np.array([width, height, width, height], np.float64)
    tracks = []
    for plan in plan_tracks(rows, MODEL_FPS):
        stamps = np.array([r.timestamp for r in plan.rows])
        given = np.clip(np.array([r.box for r in plan.rows], np.float64), 0.0, 1.0)
        frames = np.flatnonzero((frame_times >= stamps[0] - half_frame) & (frame_times <= stamps[-1] + half_frame))
        if not len(frames):
            continue
        times = frame_times[frames]
        tracks.append(RenderTrack(len(tracks), plan.entity_id, frames, interpolate_boxes(times, stamps, given) * scale,
                                  plan.times, plan.boxes * scale, frame_samples(times, plan.times),
                                  [(r, int(k)) for r, k in zip(plan.rows, plan.row_frames(MODEL_FPS))]))
    return tracks
