"""The review page: one self-contained HTML file per render (no CDN, no server; opened from disk it works).

The page plays the input video (where a browser can: H.264 / VP8 / VP9 / AV1 in MP4, MOV or WebM) and draws
boxes, labels and heatmaps over it from the render document, each layer switchable; the annotated MP4 beside
the JSON is the other choice (its overlays burned in). Both are referenced by paths relative to the page.
Under the video: one probability lane per track (speaking segments shaded, unsure stretches marked, ground
truth and errors when the render had annotations), a per-track summary and an error list.
The page's code and style are ``assets/review.{js,css}``; the data goes in as one JSON script element.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import numpy as np

from asd_se.core.errors import MediaError
from asd_se.core.fsio import write_text_atomic
from asd_se.core.media import probe
from asd_se.review.document import RenderDocument
from asd_se.review.segments import SegmentSettings, column, track_name, track_segments
from asd_se.review.truth import summarise

BROWSER_CONTAINERS = ("mp4", "mov", "webm", "matroska")  # FFmpeg's format names contain these
BROWSER_VIDEO = ("h264", "vp8", "vp9", "av1")
BROWSER_AUDIO = ("", "aac", "mp3", "opus", "vorbis", "flac")


def _unsure(times: np.ndarray, probs: np.ndarray, frame_s: float, settings: SegmentSettings) -> list[list[float]]:
    """``[[start, end], ...]`` s where the probability sits between the segment thresholds (off <= p < on)."""
    band = (probs >= settings.off) & (probs < settings.on)
    edges = np.diff(np.concatenate([[0], band.astype(np.int8), [0]]))
    return [[round(float(times[a]), 3), round(float(times[b - 1] + frame_s), 3)]
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


def browser_playable(path: Path) -> bool:
    """Whether a browser's <video> plays this file (by its container and codecs)."""
    try:
        info = probe(path)
    except MediaError:
        return False
    return (any(name in info.container for name in BROWSER_CONTAINERS) and info.video_codec in BROWSER_VIDEO
            and info.audio_codec in BROWSER_AUDIO)


def _relative(target: Path, page: Path) -> str:
    """``target`` as a URL relative to the page's folder (spaces, ``#`` and ``%`` escaped)."""
    return quote(Path(os.path.relpath(target.resolve(), page.resolve().parent)).as_posix())


def _videos(document: RenderDocument, page: Path) -> tuple[list[dict], list[str]]:
    """The page's video choices (first = shown first) and notes on what is missing."""
    videos, notes = [], []
    source = Path(str(document.data.get("input", "")))
    if not source.is_absolute():  # older renders recorded the path as given: try beside the JSON, then here
        source = next((p for p in (document.path.parent / source, Path.cwd() / source) if p.is_file()), source)
    if source.is_file() and browser_playable(source):
        videos.append({"label": "source (overlays drawn by the page)", "src": _relative(source, page),
                       "overlays": True})
    elif source.is_file():
        notes.append(f"{source.name}: a browser cannot play this input (container/codec); the annotated MP4 is "
                     f"shown, its overlays burned in")
    else:
        notes.append(f"{source}: the input video is not there any more; the annotated MP4 is shown, its overlays "
                     f"burned in")
    if document.video.is_file():
        videos.append({"label": "annotated MP4 (as rendered)", "src": _relative(document.video, page),
                       "overlays": False})
    else:
        notes.append(f"{document.video.name}: the rendered MP4 is not beside {document.path.name}")
    if not videos:
        notes.append("no video to play: the lanes, summary and errors below still work")
    return videos, notes


def _track_payload(track: dict, frame_s: float, settings: SegmentSettings) -> dict:
    """What the page needs of one track, as compact columns."""
    frames = track["frames"]
    times, probs = column(track, "time"), column(track, "prob")
    name = track_name(track)
    segments = track_segments(name, times, probs, frame_s, settings)
    payload = {
        "name": name, "t": times.round(4).tolist(), "p": probs.round(4).tolist(),
        "box": [frame["box"] for frame in frames],
        "segments": [[s.start, s.end] for s in segments],
        "unsure": _unsure(times, probs, frame_s, settings),
        "summary": {"on_screen_s": round(len(frames) * frame_s, 2),
                    "speaking_s": round(sum(s.duration for s in segments), 2),
                    "mean_prob": round(float(probs.mean()), 3) if len(probs) else None},
    }
    if "maps" in track and all("sample" in f and "region" in f for f in frames):
        payload.update(sample=[f["sample"] for f in frames], region=[f["region"] for f in frames],
                       maps=track["maps"])
    if track.get("truth"):
        payload["truth"] = track["truth"]
    return payload


def page_data(document: RenderDocument, page: Path, settings: SegmentSettings = SegmentSettings()) -> dict:
    """Everything the page shows, as one JSON-able dict."""
    data = document.data
    frame_s = 1.0 / document.fps
    videos, notes = _videos(document, page)
    notes = document.missing + notes
    tracks = [_track_payload(track, frame_s, settings) for track in document.tracks]
    if document.tracks and not any("maps" in t for t in tracks):
        notes.append("no heatmaps in this render (no explainer ran, or an older asd-se wrote it)")
    if not tracks:
        notes.append("no faces were found in this video: nothing to review but the video itself")
    truth = summarise(document.tracks)
    return {
        "title": Path(str(data.get("input", document.path.stem))).name,
        "fps": document.fps, "width": data.get("width"), "height": data.get("height"),
        "duration": float(data.get("duration_s") or max([t["t"][-1] for t in tracks if t["t"]], default=0.0)),
        "explainer": data.get("explainer"), "checkpoint": data.get("checkpoint"),
        "alpha": float((data.get("settings") or {}).get("alpha", 0.45)),
        "render_notes": list(data.get("notes", [])), "notes": notes, "videos": videos, "tracks": tracks,
        "segment_settings": asdict(settings),
        "truth": None if truth is None else {"ap": truth.ap, "accuracy": truth.accuracy, "rows": truth.rows,
                                             "errors": [asdict(e) for e in truth.errors]},
    }


def _asset(name: str) -> str:
    return resources.files("asd_se.review").joinpath("assets", name).read_text(encoding="utf-8")


def review_html(data: dict) -> str:
    """The page: the HTML template with its style, code and ``data`` inlined."""
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")  # never closes the script element
    title = data["title"].replace("&", "&amp;").replace("<", "&lt;")
    return (_asset("review.html").replace("{{title}}", title).replace("{{style}}", _asset("review.css"))
            .replace("{{data}}", payload).replace("{{code}}", _asset("review.js")))


def write_review(document: RenderDocument, page: Path, settings: SegmentSettings = SegmentSettings()) -> list[str]:
    """Write the review page of ``document`` to ``page`` (atomically); returns the notes on what is missing."""
    data = page_data(document, page, settings)
    write_text_atomic(page, review_html(data))
    return data["notes"]
