"""The AVA-ActiveSpeaker vocabulary, one definition each: the labels, which of them is positive, the key that
joins a prediction to its annotation row, and the official prediction CSV.

Official semantics (ActivityNet ``get_ava_active_speaker_performance.py``): only ``SPEAKING_AUDIBLE`` is
positive; ``SPEAKING_NOT_AUDIBLE`` and ``NOT_SPEAKING`` are negatives. Rows join by key, never by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from asd_se.core.fsio import write_csv_atomic

NOT_SPEAKING, SPEAKING_AUDIBLE, SPEAKING_NOT_AUDIBLE = "NOT_SPEAKING", "SPEAKING_AUDIBLE", "SPEAKING_NOT_AUDIBLE"
LABELS = (NOT_SPEAKING, SPEAKING_AUDIBLE, SPEAKING_NOT_AUDIBLE)
POSITIVE = SPEAKING_AUDIBLE
LABEL_CODES = {label: code for code, label in enumerate(LABELS)}  # per-frame labels in the track store
POSITIVE_CODE = LABEL_CODES[POSITIVE]

Key = tuple[str, float, str]


def ava_key(video_id: str, timestamp: float | str, entity_id: str) -> Key:
    """The join key (video_id, timestamp, entity_id), the timestamp rounded to 1 ms so ``"902.08"`` and
    ``902.080000001`` meet."""
    return video_id, round(float(timestamp), 3), entity_id


@dataclass
class Prediction:
    """One annotation row with the model's scores (AV head, audio-only head, visual-only head)."""

    video_id: str
    timestamp: str
    box: list[float]
    label: str
    entity_id: str
    score: float
    audio_score: float
    visual_score: float

    @property
    def key(self) -> Key:
        return ava_key(self.video_id, self.timestamp, self.entity_id)


def write_predictions(path: Path, predictions: Iterable[Prediction]) -> None:
    """Headerless official format: the 8 ground-truth columns (label ``SPEAKING_AUDIBLE``) + score."""
    write_csv_atomic(Path(path), ([p.video_id, p.timestamp, *(repr(float(v)) for v in p.box), POSITIVE,
                                   p.entity_id, f"{p.score:.6f}"] for p in predictions))
