"""``asd-se evaluate``: score every annotated row of a split, write official-format predictions, report mAP."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import torch

from asd_se.core.ava import POSITIVE, Prediction
from asd_se.core.metrics import MetricUndefined, ava_average_precision
from asd_se.core.progress import with_progress
from asd_se.models import AsdModel
from asd_se.scoring import score_track
from data_prep.store import StoreError, TrackStore


@dataclass
class EvalResult:
    """mAP of each head (None where undefined, with the reason), row counts, per-category mAP."""

    rows: int
    positives: int
    map_av: float | None
    map_audio: float | None
    map_visual: float | None
    undefined: str | None = None
    per_category: dict[str, float | None] = field(default_factory=dict)

    def render(self) -> str:
        if self.undefined:
            return f"rows: {self.rows}, positives: {self.positives}\nmAP: undefined — {self.undefined}"
        lines = [f"rows: {self.rows}, positives (SPEAKING_AUDIBLE): {self.positives}",
                 f"mAP (audio-visual): {100 * self.map_av:.2f}",
                 f"mAP (audio-only head): {100 * self.map_audio:.2f}",
                 f"mAP (visual-only head): {100 * self.map_visual:.2f}"]
        lines += [f"mAP [{name}]: " + ("undefined (no positives)" if value is None else f"{100 * value:.2f}")
                  for name, value in sorted(self.per_category.items())]
        return "\n".join(lines)


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
        rows = meta.rows
        for ts, label, box, frame in zip(rows.timestamps, rows.labels, rows.boxes, rows.frames):
            predictions.append(Prediction(meta.video_id, ts, box, label, meta.entity_id, float(scores.probs[frame]),
                                          float(scores.audio_probs[frame]), float(scores.visual_probs[frame])))
    return predictions


def _ap(predictions: list[Prediction], attribute: str) -> float:
    return ava_average_precision({p.key: p.label for p in predictions},
                                 {p.key: getattr(p, attribute) for p in predictions})


def summarise(predictions: list[Prediction], categories: dict[str, str] | None = None) -> EvalResult:
    """mAP of the three heads (and per category), computed with the official semantics."""
    positives = sum(p.label == POSITIVE for p in predictions)
    try:
        result = EvalResult(len(predictions), positives, _ap(predictions, "score"), _ap(predictions, "audio_score"),
                            _ap(predictions, "visual_score"))
    except MetricUndefined as err:
        return EvalResult(len(predictions), positives, None, None, None, undefined=str(err))
    for name in sorted(set((categories or {}).values())):
        chosen = [p for p in predictions if categories.get(p.video_id) == name]
        try:
            result.per_category[name] = _ap(chosen, "score") if chosen else None
        except MetricUndefined:
            result.per_category[name] = None
    return result


def read_categories(path: Path) -> dict[str, str]:
    """``video_id,category`` lines (a header line is skipped) -> mapping."""
    with open(path, newline="") as handle:
        rows = [r for r in csv.reader(handle) if len(r) >= 2]
    return {r[0].strip(): r[1].strip() for r in rows if r[0].strip() != "video_id"}
