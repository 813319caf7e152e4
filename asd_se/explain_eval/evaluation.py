"""``asd-se explain-eval``: every explainer on the same windows of a store's split, measured the same way.

Windows of ``window`` frames are spread evenly over the split's tracks (at most ``max_frames`` frames). Per
window: one forward pass through the scoring engine; per method, its maps upsampled onto the crop, and then
  - pointing game (strict, and within 15 px of the original frame), relevance mass ("mouth energy") and
    relevance rank accuracy at annotation rows with a mouth box (``--mouth-boxes``);
  - deletion / insertion AUC and Average Drop / Increase on the speaking frames (the speaking probability is
    the score being explained).
Results per method, per track and for the whole split.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import torch

from asd_se.core.ava import POSITIVE_CODE
from asd_se.core.options import AT_LEAST_ONE, NOT_NEGATIVE, check_settings, setting
from asd_se.core.progress import with_progress
from asd_se.core.timing import StageTimer
from asd_se.explain import BASELINES, EXPLAINERS, ChannelSelection, build_explainer
from asd_se.explain.maps import upsample
from asd_se.explain_eval.faithfulness import (
    average_drop_increase,
    curve_auc,
    explanation_masked,
    mean_or_none,
    perturbation_curves,
)
from asd_se.explain_eval.localisation import TOLERANCE_PX, energy_inside, pointing_hits, rank_inside
from asd_se.explain_eval.mouths import MouthBoxes, mouth_boxes_on_crops
from asd_se.explain_eval.sanity import CascadeStep, overlap_consistency, randomisation_cascade
from asd_se.models import AsdModel
from asd_se.scoring.engine import score_clip
from data_prep.store import TrackMeta, TrackStore

BASELINE_BLUR = 12.0  # sigma (crop pixels) of the blurred crop that deleted pixels become


@dataclass(frozen=True)
class ExplainEvalConfig:
    """Which methods, on how much of which split, with how many perturbation steps."""

    split: str = setting("val", "the store's split to explain")
    methods: tuple[str, ...] = setting(EXPLAINERS + BASELINES, "explainers to compare (and the centre baseline)",
                                       EXPLAINERS + BASELINES)
    max_frames: int = setting(2000, "frames measured", range=AT_LEAST_ONE)
    window: int = setting(100, "frames per window", range=AT_LEAST_ONE)
    steps: int = setting(10, "deletion/insertion steps", range=AT_LEAST_ONE)
    se: ChannelSelection = ChannelSelection()
    grid_samples: int = setting(4, "faces per class (speaking / silent) in grid.png", range=NOT_NEGATIVE)
    sanity_frames: int = setting(400, "frames for the randomisation cascade and the overlapping-window "
                                      "consistency (0: skip both)", range=NOT_NEGATIVE)
    sanity_seeds: int = setting(3, "random initialisations the randomisation cascade is repeated with",
                                range=AT_LEAST_ONE)
    device: str = setting("auto", "auto (the GPU where there is one), cpu, cuda or cuda:N")

    def __post_init__(self) -> None:
        check_settings(self, "explain-eval ")


@dataclass
class _Tally:
    """Per-frame values collected for one method (over a track or the whole split)."""

    pointing_speaking: list[float] = field(default_factory=list)
    pointing_all: list[float] = field(default_factory=list)
    tolerant_speaking: list[float] = field(default_factory=list)  # pointing within TOLERANCE_PX
    rank_speaking: list[float] = field(default_factory=list)
    energy_speaking: list[float] = field(default_factory=list)
    energy_all: list[float] = field(default_factory=list)
    deletion: list[float] = field(default_factory=list)
    insertion: list[float] = field(default_factory=list)
    original: list[float] = field(default_factory=list)
    explained: list[float] = field(default_factory=list)

    def add(self, other: "_Tally") -> None:
        for name, values in vars(other).items():
            getattr(self, name).extend(values)

    def summary(self) -> dict:
        drop, increase = average_drop_increase(torch.tensor(self.original), torch.tensor(self.explained))
        return {"pointing_speaking": mean_or_none(self.pointing_speaking),
                "n_pointing_speaking": len(self.pointing_speaking),
                "pointing_all": mean_or_none(self.pointing_all), "n_pointing_all": len(self.pointing_all),
                "pointing_tolerant_speaking": mean_or_none(self.tolerant_speaking),
                "rank_speaking": mean_or_none(self.rank_speaking),
                "energy_speaking": mean_or_none(self.energy_speaking), "energy_all": mean_or_none(self.energy_all),
                "deletion_auc": mean_or_none(self.deletion), "insertion_auc": mean_or_none(self.insertion),
                "n_speaking_frames": len(self.deletion),
                "average_drop": None if not self.original else drop,
                "increase_in_confidence": None if not self.original else increase}


@dataclass
class GridSample:
    """One face of the grid image: its crop ``(S, S)``, label, mouth box (crop pixels) and each method's heatmap."""

    crop: np.ndarray
    speaking: bool
    mouth: np.ndarray | None
    heat: dict[str, np.ndarray] = field(default_factory=dict)


def plan_windows(metas: list[TrackMeta], window: int, max_frames: int) -> list[tuple[TrackMeta, int, int]]:
    """``(track, start, end)`` windows of at most ``window`` frames, evenly spread over all tracks so that
    together they hold at most ``max_frames`` frames."""
    every = [(m, start, min(start + window, m.frames)) for m in metas for start in range(0, m.frames, window)]
    every = [w for w in every if w[2] - w[1] >= 2]
    wanted = max(1, max_frames // window)
    if len(every) <= wanted:
        return every
    return [every[i] for i in np.linspace(0, len(every) - 1, wanted).round().astype(int)]


def _blurred(faces: np.ndarray) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), BASELINE_BLUR) for f in faces])


@dataclass
class ExplainEvalResult:
    """What explain-eval measured: per method (``methods``) and per track and method (``per_track``) the
    summaries of ``_Tally``; the SE vectors met (``se_values``, one array per window) and the grid faces."""

    config: ExplainEvalConfig
    mouth_boxes: list[str] | None  # the files the mouth boxes came from; None: none found
    frames: int
    windows: int
    tracks: int
    methods: dict[str, dict]
    per_track: dict[str, dict[str, dict]]
    se_values: list[np.ndarray] = field(default_factory=list)
    grid: list[GridSample] = field(default_factory=list)
    cascade: list[CascadeStep] = field(default_factory=list)  # sanity.py: randomisation, output down to stem
    consistency: dict[str, float | None] = field(default_factory=dict)  # per method, mean over shared frames
    se_channels: dict = field(default_factory=dict)  # which channels the SE vector selects (``channel_usage``)

    def to_json(self) -> dict:
        """Everything but the arrays behind the figures."""
        return {"config": asdict(self.config), "mouth_boxes": self.mouth_boxes, "frames": self.frames,
                "windows": self.windows, "tracks": self.tracks, "methods": self.methods,
                "per_track": self.per_track, "randomisation_cascade": [asdict(step) for step in self.cascade],
                "consistency": self.consistency, "se_channels": self.se_channels}


def channel_usage(selected: dict[bool, list[list[int]]], top: int = 8) -> dict:
    """Which channels the SE vector selected on speaking and on silent frames (``selected``: per class, each
    frame's channels): per class the frames, channels per frame and the ``top`` most often selected with the
    share of frames; ``overlap``: the Jaccard index of the channels selected on at least half of each class's
    frames (1: the same channels whatever the decision)."""
    usage, common = {}, {}
    for speaking, frames in selected.items():
        counts = defaultdict(int)
        for channels in frames:
            for channel in channels:
                counts[channel] += 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        usage["speaking" if speaking else "silent"] = {
            "frames": len(frames), "channels_per_frame": mean_or_none([len(c) for c in frames]),
            "most_selected": [[channel, count / len(frames)] for channel, count in ranked[:top]]}
        common[speaking] = {channel for channel, count in counts.items() if count >= len(frames) / 2}
    if len(common) == 2 and common[True] | common[False]:
        usage["overlap"] = len(common[True] & common[False]) / len(common[True] | common[False])
    return usage


def evaluate_explainers(model: AsdModel, store: TrackStore, mouths: MouthBoxes,
                        config: ExplainEvalConfig, device: torch.device, progress: bool = True
                        ) -> ExplainEvalResult:
    """Run every method of ``config`` on the planned windows: one forward pass per window (the scoring
    engine's), each method's maps from it, then the metrics."""
    explainers = [build_explainer(name, config.se) for name in config.methods]
    sizes = {m["video_id"]: (m["facts"]["width"], m["facts"]["height"]) for m in store.manifests()}
    windows = plan_windows(store.tracks(config.split), config.window, config.max_frames)
    size = store.settings.crop_size
    totals = {e.name: _Tally() for e in explainers}
    per_track: dict[str, dict[str, _Tally]] = defaultdict(lambda: {e.name: _Tally() for e in explainers})
    timer, frames_seen, se_values, grid = StageTimer(), 0, [], []
    selected: dict[bool, list[list[int]]] = defaultdict(list)  # the SE map's channels per frame, by class
    grid_every = max(1, len(windows) // max(1, config.grid_samples))
    for number, (meta, start, end) in enumerate(with_progress(windows, "explain-eval", "window",
                                                              enabled=progress)):
        faces_np, audio_np = store.load(meta, start, end - start)
        faces, audio = torch.from_numpy(faces_np).to(device), torch.from_numpy(audio_np).to(device)
        baseline = torch.from_numpy(_blurred(faces_np)).to(device)
        speaking = torch.tensor(np.array(meta.labels[start:end]) == POSITIVE_CODE)
        on_crops = mouth_boxes_on_crops(meta, mouths.boxes, sizes.get(meta.video_id, (1, 1)), size,
                                        store.settings.crop)
        mouth = {k - start: box for k, box in on_crops.items() if start <= k < end}
        boxed = torch.tensor(sorted(mouth), dtype=torch.long)
        boxed_rows = torch.tensor(np.array([mouth[int(k)] for k in boxed]), dtype=torch.float32).reshape(-1, 5)
        boxes, tolerance = boxed_rows[:, :4], boxed_rows[:, 4] * TOLERANCE_PX  # crop pixels
        frames_seen += end - start
        scores = score_clip(model, faces[None], audio[None], explainers, timer)
        if scores.se_weights is not None:
            se_values.append(scores.se_weights.float().cpu().numpy())
        for channels, talking in zip(scores.channels or [], speaking.tolist()):
            selected[talking].append(channels)

        def score(perturbed: torch.Tensor) -> torch.Tensor:
            return score_clip(model, perturbed[None], audio[None]).probs

        samples = _grid_picks(number, grid_every, speaking, mouth, faces_np, config.grid_samples, grid)
        for name, low in scores.maps.items():
            heat = upsample(low, size).cpu()
            tally = _Tally()
            if len(boxed):
                hits = pointing_hits(heat[boxed], boxes).float()
                energy = energy_inside(heat[boxed], boxes)
                on_speech = speaking[boxed]
                tally.pointing_all += hits.tolist()
                tally.energy_all += energy.tolist()
                tally.pointing_speaking += hits[on_speech].tolist()
                tally.energy_speaking += energy[on_speech].tolist()
                tally.tolerant_speaking += pointing_hits(heat[boxed], boxes, tolerance).float()[on_speech].tolist()
                tally.rank_speaking += rank_inside(heat[boxed], boxes)[on_speech].tolist()
            if speaking.any():
                heat_device = heat.to(device)
                deletion = curve_auc(perturbation_curves(score, faces, heat_device, baseline, config.steps)).cpu()
                insertion = curve_auc(perturbation_curves(score, faces, heat_device, baseline, config.steps,
                                                          insertion=True)).cpu()
                explained = score(explanation_masked(faces, heat_device, baseline)).cpu()
                tally.deletion += deletion[speaking].tolist()
                tally.insertion += insertion[speaking].tolist()
                tally.original += scores.probs.cpu()[speaking].tolist()
                tally.explained += explained[speaking].tolist()
            totals[name].add(tally)
            per_track[f"{meta.video_id}|{meta.entity_id}"][name].add(tally)
            for sample in samples:
                sample[1].heat[name] = heat[sample[0]].numpy()
    cascade, consistency = _sanity(model, explainers, store, windows, config, device)
    methods = {}
    per_frame = 1000 / max(frames_seen, 1)
    for name, tally in totals.items():
        forward, explain = timer.seconds["model"], timer.seconds[f"{name}_maps"]
        methods[name] = {**tally.summary(), "forward_ms_per_frame": forward * per_frame,
                         "explain_ms_per_frame": explain * per_frame,
                         "total_ms_per_frame": (forward + explain) * per_frame}
    return ExplainEvalResult(config, [str(p) for p in mouths.sources] if mouths.boxes else None, frames_seen,
                             len(windows), len({(m.video_id, m.entity_id) for m, _, _ in windows}), methods,
                             {key: {name: tally.summary() for name, tally in tallies.items()}
                              for key, tallies in sorted(per_track.items())}, se_values, grid, cascade, consistency,
                             channel_usage(selected) if selected else {})


def _sanity(model: AsdModel, explainers: list, store: TrackStore, windows: list[tuple[TrackMeta, int, int]],
            config: ExplainEvalConfig, device: torch.device) -> tuple[list[CascadeStep], dict[str, float | None]]:
    """The randomisation cascade and the overlapping-window consistency on ``config.sanity_frames`` frames of
    the planned windows (evenly chosen)."""
    count = min(len(windows), config.sanity_frames // max(1, config.window))
    if count == 0:
        return [], {}
    chosen = [windows[i] for i in np.linspace(0, len(windows) - 1, count).round().astype(int)]

    def clip(meta: TrackMeta, start: int, frames: int):
        faces, audio = store.load(meta, start, frames)
        return torch.from_numpy(faces).to(device), torch.from_numpy(audio).to(device)

    cascade = randomisation_cascade(model, explainers, [clip(m, a, b - a) for m, a, b in chosen],
                                    store.settings.crop_size, tuple(range(max(1, config.sanity_seeds))))
    shared: dict[str, list[float]] = defaultdict(list)
    for meta, start, end in chosen:  # the second window starts half-way into the first, as long where the track is
        half = (end - start) // 2
        if half >= 1:
            found = overlap_consistency(model, explainers, clip(meta, start, end - start),
                                        clip(meta, start + half, min(end - start, meta.frames - start - half)), half)
            for name, values in found.items():
                shared[name] += values.tolist()
    return cascade, {e.name: mean_or_none(shared[e.name]) for e in explainers}


def _grid_picks(number: int, every: int, speaking: torch.Tensor, mouth: dict, faces: np.ndarray, per_class: int,
                grid: list[GridSample]) -> list[tuple[int, GridSample]]:
    """From every ``every``-th window, one speaking and one silent frame (with a mouth box where there is one)
    for the grid image, until it holds ``per_class`` of each."""
    if number % every:
        return []
    picks = []
    for want in (True, False):
        if sum(s.speaking == want for s in grid) >= per_class:
            continue
        candidates = [k for k in range(len(speaking)) if bool(speaking[k]) == want]
        with_mouth = [k for k in candidates if k in mouth] or candidates
        if with_mouth:
            k = with_mouth[len(with_mouth) // 2]
            sample = GridSample(faces[k], want, mouth[k][:4] if k in mouth else None)
            grid.append(sample)
            picks.append((k, sample))
    return picks
