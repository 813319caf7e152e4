"""What a render writes beside the MP4: ``OUT.json`` (per track and frame), ``OUT.csv`` (AVA prediction
format, scoreable like ``asd-se evaluate`` output) and ``OUT.timeline.png`` (speaking probability over time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from asd_se.core.ava import POSITIVE, Prediction
from asd_se.core.figures import new_figure, save_figure
from asd_se.core.fsio import atomic_path
from asd_se.render.scan import SourceScan
from asd_se.render.scores import TrackResult
from asd_se.review.document import FORMAT, VERSION, encode_maps
from asd_se.video.record import exact, face_record
from asd_se.video.tracks import RenderTrack


def frame_records(track: RenderTrack, result: TrackResult, source: SourceScan, crop: str = "asd-se",
                  se_informative: bool = True) -> list[dict]:
    """``face_record`` for every source frame of a track (SE channels only where the SE vector carries
    information: ``se_informative``)."""
    return [face_record(frame, source.frame_times[frame], box, cut, result.probs[sample], result.scores[sample],
                        sample, result.peaks[sample] if result.maps is not None else None,
                        result.channels[sample] if se_informative else [], crop)
            for frame, box, cut, sample in zip(track.frames, track.boxes, track.shown_boxes(crop),
                                               track.frame_samples)]


def write_report(path: Path, summary: dict, tracks: list[RenderTrack], results: list[TrackResult],
                 source: SourceScan, crop: str = "asd-se", se_informative: bool = True) -> None:
    """THE render document (``review/document.py``): ``summary`` (input, settings, notes, timings) plus
    ``tracks``: every track's frame records, 8-bit maps and, against annotations, its ground truth. Written
    track by track, so a long video's records are never all in memory at once."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        head = json.dumps(dict(summary, format=FORMAT, version=VERSION, tracks=[]), indent=1, sort_keys=True)
        opening, closing = head.rsplit('"tracks": []', 1)
        handle.write(opening + '"tracks": [')
        for index, (track, result) in enumerate(zip(tracks, results)):
            entry = {"track_id": track.track_id, "name": track.name, "first_frame": int(track.frames[0]),
                     "last_frame": int(track.frames[-1]), "mean_prob": round(float(result.probs.mean()), 4),
                     "frames": frame_records(track, result, source, crop, se_informative)}
            if result.maps is not None:
                entry["maps"] = encode_maps(result.maps)
            if track.rows is not None:
                entry["truth"] = [[row.timestamp, int(row.label == POSITIVE), exact(result.probs[sample])]
                                  for row, sample in track.rows if sample < len(result.probs)]
            handle.write(("," if index else "") + "\n  " + json.dumps(entry))
        handle.write("]" + closing + "\n")


def predictions(video_id: str, tracks: list[RenderTrack], results: list[TrackResult], source: SourceScan
                ) -> Iterator[Prediction]:
    """AVA prediction rows: annotated tracks give one per annotation row (same key as the CSV, so the render
    can be scored); detected tracks one per source frame, entity ``VIDEO_ID:faceN``, boxes normalised."""
    scale = np.array([source.width, source.height, source.width, source.height], np.float64)
    for track, result in zip(tracks, results):
        if track.rows is not None:
            yield from (Prediction(video_id, row.timestamp_text, list(row.box), POSITIVE, track.name,
                                   float(result.probs[sample]), 0, 0)
                        for row, sample in track.rows if sample < len(result.probs))
            continue
        for frame, box, sample in zip(track.frames, track.boxes, track.frame_samples):
            corners = np.clip(box / scale, 0.0, 1.0)
            yield Prediction(video_id, f"{source.frame_times[frame]:.3f}", [round(float(c), 6) for c in corners],
                             POSITIVE, f"{video_id}:{track.name}", float(result.probs[sample]), 0, 0)


def plot_timeline(path: Path, tracks: list[RenderTrack], results: list[TrackResult], duration: float) -> None:
    """Speaking probability per track over time, one line per track."""
    figure = new_figure(10, 1.2 + 0.35 * max(len(tracks), 2))
    axes = figure.subplots()
    for track, result in zip(tracks, results):
        axes.plot(track.sample_times, result.probs, linewidth=1, label=track.name)
    if not tracks:
        axes.text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes.transAxes)
    axes.axhline(0.5, color="grey", linewidth=0.5, linestyle="--")
    axes.set_xlim(0, max(duration, 1e-3))
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("P(speaking)")
    if tracks:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", ncol=1 + len(tracks) // 12)
    save_figure(figure, path)
