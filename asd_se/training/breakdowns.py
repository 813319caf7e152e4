"""mAP broken down the way AVA-ActiveSpeaker papers report it, each with a bootstrap 95% interval.

Groups: all rows; face size (AVA's split by the face's width in pixels of the source frame: small < 64,
medium 64-128, large > 128); faces on screen (annotated faces sharing the row's timestamp: 1, 2, 3+); each
video; each category (of a video, WASD; or of a face track, asd-se talkset) and, for each category, its
negatives against every positive row (how well speaking faces rank above that kind of negative: a category of
negatives only, e.g. a face under another person's voice, has no mAP of its own). Intervals resample whole
videos with replacement (rows of one video are not independent), the same draws for every group, so groups can
be compared replicate by replicate; a single video's interval resamples its face tracks instead; a group of
fewer than ``MIN_UNITS`` units gets none.
AP is the official one (``core/metrics.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from asd_se.core.ava import POSITIVE, Key, Prediction
from asd_se.core.metrics import MetricUndefined, average_precision

FACE_SIZES = (("small", "<64 px"), ("medium", "64-128 px"), ("large", ">128 px"))
FACE_COUNTS = ("1", "2", "3+")
MIN_UNITS = 3  # fewer videos (or tracks) than this give a handful of distinct resamples: no honest interval


@dataclass(frozen=True)
class Breakdown:
    """One group's mAP (percent; None where it has no positives) with its 95% interval (None: not drawn)."""

    group: str
    name: str
    rows: int
    positives: int
    map: float | None
    low: float | None = None
    high: float | None = None

    def cell(self) -> str:
        if self.map is None:
            return "undefined (no positives)"
        interval = f" [{self.low:.2f}, {self.high:.2f}]" if self.low is not None else ""
        return f"{self.map:.2f}{interval}"


def face_size(width_px: float | None) -> str | None:
    """AVA's face-size class of a face ``width_px`` wide in its source frame (None: size unknown)."""
    if width_px is None:
        return None
    return "small" if width_px < 64 else "medium" if width_px <= 128 else "large"


def face_count(count: int) -> str:
    return FACE_COUNTS[min(count, 3) - 1]


def _ap(scores: np.ndarray, positive: np.ndarray) -> float | None:
    try:
        return 100.0 * average_precision(scores, positive)
    except MetricUndefined:
        return None


def _draws(rng: np.random.Generator, units: int, bootstrap: int) -> np.ndarray:
    """``(bootstrap, units)``: how often each unit is drawn when ``units`` are drawn with replacement."""
    return rng.multinomial(units, np.full(units, 1.0 / units), size=bootstrap)


def _interval(scores: np.ndarray, positive: np.ndarray, members: np.ndarray, units: np.ndarray,
              draws: np.ndarray) -> tuple[float | None, float | None]:
    """2.5 / 97.5 percentiles of the group's AP over ``draws (B, U)`` (how often each unit is drawn);
    ``units (N,)`` the unit of each row, ``members (N,)`` the group's rows. None where the group's rows come
    from fewer than ``MIN_UNITS`` units."""
    rows = np.flatnonzero(members)
    if len(np.unique(units[rows])) < MIN_UNITS:
        return None, None
    values = []
    for counts in draws:
        picked = np.repeat(rows, counts[units[rows]])  # a unit drawn k times contributes its rows k times
        value = _ap(scores[picked], positive[picked]) if len(picked) else None
        if value is not None:
            values.append(value)
    if len(values) < max(2, len(draws) // 2):  # most draws had no positives: no honest interval
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _columns(predictions: list[Prediction]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N,)`` scores, positive flags and video indices of the rows."""
    scores = np.array([p.score for p in predictions], np.float64)
    positive = np.array([p.label == POSITIVE for p in predictions])
    return scores, positive, np.unique([p.video_id for p in predictions], return_inverse=True)[1]


def overall_interval(predictions: list[Prediction], bootstrap: int = 1000, seed: int = 0
                     ) -> tuple[float | None, float | None]:
    """The 95% interval (percent) of the mAP of all rows, videos resampled: the "all" row of ``breakdowns``
    for the same seed, without the groups (cheap enough for every epoch of training). None: not drawn."""
    if not predictions or not bootstrap:
        return None, None
    scores, positive, videos = _columns(predictions)
    draws = _draws(np.random.default_rng(seed), videos.max() + 1, bootstrap)
    return _interval(scores, positive, np.ones(len(predictions), bool), videos, draws)


def breakdowns(predictions: list[Prediction], face_widths: dict[Key, float | None] | None = None,
               categories: dict[str | tuple[str, str], str] | None = None, bootstrap: int = 1000,
               seed: int = 0) -> list[Breakdown]:
    """Every group's mAP (audio-visual head) with its interval (``bootstrap`` draws; 0: none)."""
    if not predictions:
        return []
    scores, positive, videos = _columns(predictions)
    tracks = np.unique([f"{p.video_id}\t{p.entity_id}" for p in predictions], return_inverse=True)[1]
    per_frame: dict[tuple[str, str], int] = {}
    for p in predictions:
        per_frame[(p.video_id, p.timestamp)] = per_frame.get((p.video_id, p.timestamp), 0) + 1
    widths = face_widths or {}
    groups: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(predictions), bool))]
    sizes = np.array([face_size(widths.get(p.key)) for p in predictions], object)
    groups += [("face size", f"{name} ({pixels})", sizes == name) for name, pixels in FACE_SIZES]
    counts = np.array([face_count(per_frame[(p.video_id, p.timestamp)]) for p in predictions], object)
    groups += [("faces on screen", name, counts == name) for name in FACE_COUNTS]
    names = sorted({p.video_id for p in predictions})
    video_of = np.array([p.video_id for p in predictions], object)
    groups += [("video", name, video_of == name) for name in names]
    if categories:
        category_of = np.array([categories.get((p.video_id, p.entity_id), categories.get(p.video_id))
                                for p in predictions], object)
        names = sorted(set(categories.values()))
        groups += [("category", name, category_of == name) for name in names]
        groups += [("negatives vs all positives", name, positive | (category_of == name)) for name in names]
    rng = np.random.default_rng(seed)
    video_draws = _draws(rng, videos.max() + 1, bootstrap)
    result = []
    for group, name, members in groups:
        if not members.any():
            continue
        value = _ap(scores[members], positive[members])
        low = high = None
        if bootstrap and value is not None:
            if group == "video":  # one video: resample its face tracks
                local = np.unique(tracks[members], return_inverse=True)[1]
                units = np.zeros(len(predictions), np.int64)
                units[members] = local
                low, high = _interval(scores, positive, members, units, _draws(rng, local.max() + 1, bootstrap))
            else:
                low, high = _interval(scores, positive, members, videos, video_draws)
        result.append(Breakdown(group, name, int(members.sum()), int(positive[members].sum()), value, low, high))
    return result


def map_difference(first: list[Prediction], second: list[Prediction], bootstrap: int = 1000, seed: int = 0
                   ) -> Breakdown:
    """mAP of ``first`` minus that of ``second`` (two models' predictions of the same rows), with a paired 95%
    interval: each draw of the videos scores both models on the same rows."""
    return mean_map_difference([first], [second], bootstrap, seed)


def mean_map_difference(firsts: list[list[Prediction]], seconds: list[list[Prediction]], bootstrap: int = 1000,
                        seed: int = 0) -> Breakdown:
    """The mean mAP of the runs ``firsts`` minus that of the runs ``seconds`` (each run: one model's predictions
    of the same rows; e.g. three training seeds with and without a block), with a paired 95% interval: each draw
    of the videos scores every run on the same rows."""
    runs = firsts + seconds
    keys = [p.key for p in runs[0]]
    by_key = [{p.key: p for p in run} for run in runs]
    if any(len(found) != len(keys) or any(k not in found for k in keys) for found in by_key):
        raise ValueError("the prediction sets do not cover the same rows")
    positive = np.array([by_key[0][k].label == POSITIVE for k in keys])
    scores = [np.array([found[k].score for k in keys], np.float64) for found in by_key]
    videos = np.unique([by_key[0][k].video_id for k in keys], return_inverse=True)[1]
    weights = np.array([1 / len(firsts)] * len(firsts) + [-1 / len(seconds)] * len(seconds))

    def difference(rows: np.ndarray | slice) -> float | None:
        maps = [_ap(s[rows], positive[rows]) for s in scores]
        return None if None in maps else float(weights @ np.array(maps))

    value = difference(slice(None))
    if value is None:
        return Breakdown("difference", "first - second", len(keys), int(positive.sum()), None)
    low = high = None
    if bootstrap and videos.max() + 1 >= MIN_UNITS:
        draws = _draws(np.random.default_rng(seed), videos.max() + 1, bootstrap)
        values = [v for v in (difference(np.repeat(np.arange(len(keys)), counts[videos])) for counts in draws)
                  if v is not None]
        if len(values) >= max(2, bootstrap // 2):
            low, high = (float(v) for v in np.percentile(values, [2.5, 97.5]))
    return Breakdown("difference", "first - second", len(keys), int(positive.sum()), value, low, high)


def _label(b: Breakdown) -> str:
    return "all rows" if b.group == "all" else f"{b.group}: {b.name}"


def render_table(rows: list[Breakdown], bootstrap: int) -> str:
    """The breakdowns as a plain-text table."""
    if not rows:
        return ""
    kind = f"95% bootstrap interval, {bootstrap} draws of the videos" if bootstrap else "no intervals"
    width = max(len(_label(b)) for b in rows)
    lines = [f"mAP by group (audio-visual head; {kind})"]
    lines += [f"  {_label(b):<{width}}  {b.cell():<24} rows {b.rows}, positives {b.positives}" for b in rows]
    if bootstrap and any(b.map is not None and b.low is None for b in rows):
        lines.append(f"  (no interval: the group's rows come from fewer than {MIN_UNITS} videos, or a video's from "
                     f"fewer than {MIN_UNITS} face tracks)")
    return "\n".join(lines)


def as_json(rows: list[Breakdown], bootstrap: int, seed: int) -> dict:
    return {"bootstrap": bootstrap, "seed": seed, "unit": "videos (tracks within one video)",
            "groups": [asdict(b) for b in rows]}
