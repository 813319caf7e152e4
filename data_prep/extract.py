"""Decode one video once, in order, and cut every annotated face track at the model's 25 fps.

Classic AVA prep seeks once per CSV row and writes a JPG per face-frame; here every track sample is
assigned to the decoded frame nearest its time as the frames stream past, so each video is decoded once —
and only its annotated span: one seek to a little before the first annotated timestamp, decoding stops a
little after the last (AVA annotates 15 minutes of each feature-length movie).
"""

from __future__ import annotations

import numpy as np

from asd_se.core.annotated_tracks import TrackPlan, plan_tracks
from asd_se.core.annotations import Problem, Row
from asd_se.core.ava import LABEL_CODES
from asd_se.core.crop import face_crop, smooth_crop_boxes
from asd_se.core.errors import MediaError
from asd_se.core.media import DecodedVideo, decode, probe
from asd_se.core.sampling import audio_segment, nearest_frames
from data_prep.store import StoreSettings, Track, TrackMeta, TrackRows, encode_crop

SPAN_MARGIN_S = 1.0  # decoded before the first sample and after the last


def _nearest_labels(plan: TrackPlan) -> list[int]:
    stamps = np.array([r.timestamp for r in plan.rows])
    nearest = np.round(np.interp(plan.times, stamps, np.arange(len(stamps)))).astype(int)
    return [LABEL_CODES[plan.rows[i].label] for i in nearest]


def extract_video(path, rows: list[Row], settings: StoreSettings, seek: bool = True
                  ) -> tuple[list[Track], list[Problem], dict]:
    """Cut all tracks of one video: its annotated span only (``seek``), or decoded from its first frame.
    Returns tracks, the rows skipped (as Problems) and a few facts."""
    first = rows[0]
    where = (first.source, first.line)
    try:
        info = probe(path)
    except MediaError as err:
        return [], [Problem(*where, f"{err}; {len(rows)} rows of {first.video_id} skipped")], {}
    if not info.has_audio:
        return [], [Problem(*where, f"{path}: has no audio stream; {len(rows)} rows of {first.video_id} skipped")], {}
    plans = plan_tracks(rows, settings.fps)
    scale = np.array([info.width, info.height, info.width, info.height], np.float64)
    boxes = [smooth_crop_boxes(plan.boxes * scale, settings.crop) for plan in plans]  # pixels, per sample
    sample_times = np.concatenate([p.times for p in plans])
    owners = np.concatenate([np.stack([np.full(len(p.times), i), np.arange(len(p.times))], 1)
                             for i, p in enumerate(plans)])
    jpegs: list[list[bytes]] = [[] for _ in plans]
    decoded = DecodedVideo()
    frames, last_time = 0, None
    span = (sample_times.min() - SPAN_MARGIN_S, sample_times.max() + SPAN_MARGIN_S) if seek else None
    try:
        stream = decode(path, ("gray",), with_audio=True, result=decoded, span=span)
        for last_time, (gray,), samples in nearest_frames(sample_times, stream, tail=1.0 / info.fps):
            frames += 1
            for track, k in owners[samples]:
                crop, _ = face_crop(gray, tuple(boxes[track][k]), settings.crop_size, settings.crop_margin,
                                    settings.crop)
                jpegs[track].append(encode_crop(crop, settings.jpeg_quality))
    except MediaError as err:
        return [], [Problem(*where, f"{err}; {len(rows)} rows of {first.video_id} skipped")], {}
    if last_time is None:
        return [], [Problem(*where, f"{path}: no decodable video frames; {len(rows)} rows skipped")], {}
    problems = [Problem(*where, warning) for warning in decoded.warnings]
    tracks = []
    for plan, crops in zip(plans, jpegs):
        row_frames = plan.row_frames(settings.fps)
        keep = row_frames < len(crops)
        for row in (r for r, k in zip(plan.rows, keep) if not k):
            problems.append(Problem(row.source, row.line, f"timestamp {row.timestamp_text} is past the end of "
                                                          f"{path} (last frame at {last_time:.3f} s)"))
        if not keep.any():
            continue
        count = int(row_frames[keep].max()) + 1
        kept = [r for r, k in zip(plan.rows, keep) if k]
        meta = TrackMeta(first.video_id, plan.entity_id, kept[0].split, round(info.fps, 4), float(plan.times[0]),
                         count, _nearest_labels(plan)[:count],
                         TrackRows([r.timestamp_text for r in kept], [r.label for r in kept],
                                   [list(r.box) for r in kept], row_frames[keep].tolist()),
                         file="", member="", source_size=[info.width, info.height])
        tracks.append(Track(meta, crops[:count], audio_segment(decoded.audio, meta.start - decoded.audio_start, count)))
    facts = {"decoded_frames": frames, "source_fps": info.fps, "width": info.width, "height": info.height,
             "truncated": decoded.truncated, "rotation": info.rotation,
             "span": [round(t, 3) for t in span] if span else None}
    return tracks, problems, facts
