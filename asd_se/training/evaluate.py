"""``asd-se evaluate``: score every annotated row of a split, write official-format predictions, report mAP."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from asd_se.core.ava import POSITIVE, Key, Prediction, ava_key
from asd_se.core.errors import StoreError
from asd_se.core.metrics import MetricUndefined, ava_average_precision
from asd_se.core.progress import with_progress
from asd_se.models import AsdModel
from asd_se.scoring.engine import score_track
from asd_se.training.breakdowns import Breakdown, breakdowns, render_table
from data_prep.store import TrackMeta, TrackStore


@dataclass
class EvalResult:
    """mAP of each head (None where undefined, with the reason), row counts, and the AV head's mAP by group
    (``breakdowns.py``: all, face size, faces on screen, video, category) with bootstrap intervals."""

    rows: int
    positives: int
    map_av: float | None
    map_audio: float | None
    map_visual: float | None
    undefined: str | None = None
    groups: list[Breakdown] = field(default_factory=list)
    bootstrap: int = 0
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        if self.undefined:
            return f"rows: {self.rows}, positives: {self.positives}\nmAP: undefined — {self.undefined}"
        overall = next((g for g in self.groups if g.group == "all"), None)
        interval = f" [{overall.low:.2f}, {overall.high:.2f}]" if overall and overall.low is not None else ""
        lines = [f"rows: {self.rows}, positives (SPEAKING_AUDIBLE): {self.positives}",
                 f"mAP (audio-visual): {100 * self.map_av:.2f}{interval}",
                 f"mAP (audio-only head): {100 * self.map_audio:.2f}",
                 f"mAP (visual-only head): {100 * self.map_visual:.2f}"]
        if len(self.groups) > 1:
            lines.append(render_table(self.groups, self.bootstrap))
        return "\n".join(lines + self.notes)


def predict_split(model: AsdModel, store: TrackStore, split: str, device: torch.device,
                  progress: bool = True, durations: tuple[float, ...] = ()) -> list[Prediction]:
    """Score every stored annotation row of ``split``: each row takes its 25 fps frame's probability."""
    metas = store.tracks(split)
    if not metas:
        raise StoreError(f"{store.root}: no tracks in split {split!r} (splits here: "
                         f"{sorted({m.split for m in store.tracks()}) or 'none'})")
    predictions = []
    for meta in with_progress(metas, f"scoring {split}", "track", enabled=progress):
        faces, audio = store.load(meta)
        scores = score_track(model, faces, audio, device, durations=durations)
        predictions += track_predictions(meta, scores.probs, scores.audio_probs, scores.visual_probs)
    return predictions


def track_predictions(meta: TrackMeta, probs: np.ndarray, audio_probs: np.ndarray, visual_probs: np.ndarray
                      ) -> list[Prediction]:
    """A track's annotation rows with the per-frame probabilities ``(T,)`` of the three heads: each row takes its
    25 fps frame's."""
    rows = meta.rows
    return [Prediction(meta.video_id, ts, box, label, meta.entity_id, float(probs[frame]), float(audio_probs[frame]),
                       float(visual_probs[frame]))
            for ts, label, box, frame in zip(rows.timestamps, rows.labels, rows.boxes, rows.frames)]


def face_widths(store: TrackStore, split: str) -> dict[Key, float | None]:
    """Per annotation row of ``split``: the face's width in source-frame pixels (None: the store predates it)."""
    return {ava_key(meta.video_id, ts, meta.entity_id): width for meta in store.tracks(split)
            for ts, width in zip(meta.rows.timestamps, meta.face_widths)}


def _ap(predictions: list[Prediction], attribute: str) -> float:
    return ava_average_precision({p.key: p.label for p in predictions},
                                 {p.key: getattr(p, attribute) for p in predictions})


def summarise(predictions: list[Prediction], categories: dict[str, str] | None = None,
              widths: dict[Key, float | None] | None = None, bootstrap: int = 0, seed: int = 0) -> EvalResult:
    """mAP of the three heads with the official semantics, and the AV head's mAP by group with ``bootstrap``
    draws for its 95% intervals (0: none)."""
    positives = sum(p.label == POSITIVE for p in predictions)
    try:
        result = EvalResult(len(predictions), positives, _ap(predictions, "score"), _ap(predictions, "audio_score"),
                            _ap(predictions, "visual_score"), bootstrap=bootstrap)
    except MetricUndefined as err:
        return EvalResult(len(predictions), positives, None, None, None, undefined=str(err))
    result.groups = breakdowns(predictions, widths, categories, bootstrap, seed)
    if widths is not None and all(w is None for w in widths.values()):
        result.notes.append("face size: unknown (the store was prepared before asd-se recorded frame sizes; "
                            "prepare it again for this breakdown)")
    return result


def read_categories(path: Path) -> dict[str | tuple[str, str], str]:
    """``video_id,category`` lines (a whole video's category; WASD) or ``video_id,entity_id,category`` lines (one
    face track's; asd-se talkset) -> mapping by video id or ``(video_id, entity_id)``. A header line is skipped."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [[cell.strip() for cell in r] for r in csv.reader(handle) if len(r) >= 2]
    return {(r[0], r[1]) if len(r) >= 3 else r[0]: r[-1] for r in rows if r[0] != "video_id"}
