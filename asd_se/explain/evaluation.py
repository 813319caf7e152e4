"""``asd-se explain-eval``: every explainer on the same windows of a store's split, measured the same way.

Windows of ``window`` frames are spread evenly over the split's tracks (at most ``max_frames`` frames). Per
window and method: the explainer's forward pass (timed), its maps upsampled onto the crop, and then
  - pointing game and mouth-box energy at annotation rows with a mouth box (``--mouth-boxes``);
  - deletion / insertion AUC and Average Drop / Increase on the speaking frames (the speaking probability is
    the score being explained).
Results per method, per track and for the whole split.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from asd_se.explain import EXPLAINERS, ChannelSelection, build_explainer
from asd_se.explain.faithfulness import (average_drop_increase, curve_auc, energy_inside, explanation_masked,
                                         mean_or_none, perturbation_curves, pointing_hits)
from asd_se.explain.maps import upsample
from asd_se.faces.crop import crop_region
from asd_se.models import ActiveSpeakerModel
from asd_se.progress import with_progress
from data_prep.annotations import mouth_box_sidecar, read_box_file
from data_prep.store import LABEL_CODES, TrackMeta, TrackStore

SPEAKING = LABEL_CODES["SPEAKING_AUDIBLE"]
BASELINE_BLUR = 12.0  # sigma (crop pixels) of the blurred crop that deleted pixels become


@dataclass(frozen=True)
class ExplainEvalConfig:
    """Which methods, on how much of which split, with how many perturbation steps."""

    split: str = "val"
    methods: tuple[str, ...] = EXPLAINERS
    max_frames: int = 2000
    window: int = 100
    steps: int = 10
    se: ChannelSelection = ChannelSelection()
    grid_samples: int = 4  # per class (speaking / not speaking) in the grid image


@dataclass
class _Tally:
    """Per-frame values collected for one method (over a track or the whole split)."""

    pointing_speaking: list[float] = field(default_factory=list)
    pointing_all: list[float] = field(default_factory=list)
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


@dataclass
class MouthBoxes:
    """Mouth boxes by annotation key (normalised ``(x1, y1, x2, y2)``), the files they came from, and the rows
    of those files that were skipped."""

    boxes: dict = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_mouth_boxes(store: TrackStore, split: str, given: Path | None = None) -> MouthBoxes:
    """The mouth boxes of ``given``, or else of the sidecars of the annotation CSVs the store was prepared
    from (``mouth_box_sidecar``: the synthetic set has them; AVA has none). A given file without one usable
    box is an error; finding none is not (pointing and mouth energy are then not measured)."""
    paths = [Path(given)] if given else [p for p in map(mouth_box_sidecar, store.annotation_sources(split))
                                         if p.is_file()]
    found = MouthBoxes(sources=paths)
    for path in paths:
        boxes, problems = read_box_file(path)
        found.boxes.update(boxes)
        found.problems += [str(p) for p in problems]
    if given and not found.boxes:
        raise ValueError(f"{given}: no usable mouth boxes" + (f" ({found.problems[0]})" if found.problems else ""))
    return found


def plan_windows(metas: list[TrackMeta], window: int, max_frames: int) -> list[tuple[TrackMeta, int, int]]:
    """``(track, start, end)`` windows of at most ``window`` frames, evenly spread over all tracks so that
    together they hold at most ``max_frames`` frames."""
    every = [(m, start, min(start + window, m.frames)) for m in metas for start in range(0, m.frames, window)]
    every = [w for w in every if w[2] - w[1] >= 2]
    wanted = max(1, max_frames // window)
    if len(every) <= wanted:
        return every
    return [every[i] for i in np.linspace(0, len(every) - 1, wanted).round().astype(int)]


def mouth_boxes_on_crops(meta: TrackMeta, mouths: dict, frame_size: tuple[int, int], crop_size: int
                         ) -> dict[int, np.ndarray]:
    """Track frame -> mouth box ``(4,)`` in crop pixels, for the annotation rows that have one."""
    width, height = frame_size
    scale = np.array([width, height, width, height], np.float64)
    found = {}
    for stamp, box, frame in zip(meta.rows.timestamps, meta.rows.boxes, meta.rows.frames):
        mouth = mouths.get((meta.video_id, round(float(stamp), 3), meta.entity_id))
        if mouth is None:
            continue
        region = crop_region(tuple(np.clip(box, 0, 1) * scale))
        origin = np.array([region.x0, region.y0, region.x0, region.y0], np.float64)
        found[frame] = (np.array(mouth) * scale - origin) * crop_size / region.side
    return found


def _blurred(faces: np.ndarray) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), BASELINE_BLUR) for f in faces])


def _scorer(model: ActiveSpeakerModel, audio: torch.Tensor):
    def score(faces: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.sigmoid(model(faces[None], audio[None]).logits[0].float())
    return score


def evaluate_explainers(model: ActiveSpeakerModel, store: TrackStore, mouths: MouthBoxes, config: ExplainEvalConfig,
                        device: torch.device, progress: bool = True) -> dict:
    """Run every method of ``config`` on the planned windows; returns the JSON-ready results (plus, under the
    private keys ``_se_values`` and ``_grid``, what the figures are drawn from)."""
    explainers = {name: build_explainer(name, config.se) for name in config.methods}
    sizes = {m["video_id"]: (m["facts"]["width"], m["facts"]["height"]) for m in store.manifests()}
    metas = store.tracks(config.split)
    windows = plan_windows(metas, config.window, config.max_frames)
    size = store.settings.crop_size
    totals = {name: _Tally() for name in explainers}
    per_track: dict[str, dict[str, _Tally]] = defaultdict(lambda: {name: _Tally() for name in explainers})
    seconds = {name: [0.0, 0.0] for name in explainers}  # forward, explanation
    frames_seen, se_values, grid = 0, [], []
    grid_every = max(1, len(windows) // max(1, config.grid_samples))
    model.eval()
    for number, (meta, start, end) in enumerate(with_progress(windows, "explain-eval", "window",
                                                              enabled=progress)):
        faces_np, audio_np = store.load(meta, start, end - start)
        faces, audio = torch.from_numpy(faces_np).to(device), torch.from_numpy(audio_np).to(device)
        baseline = torch.from_numpy(_blurred(faces_np)).to(device)
        speaking = torch.tensor(np.array(meta.labels[start:end]) == SPEAKING)
        mouth = {k - start: box for k, box in mouth_boxes_on_crops(meta, mouths.boxes, sizes.get(meta.video_id, (1, 1)),
                                                                     size).items() if start <= k < end}
        boxed = torch.tensor(sorted(mouth), dtype=torch.long)
        boxes = torch.tensor(np.array([mouth[int(k)] for k in boxed]), dtype=torch.float32).reshape(-1, 4)
        score = _scorer(model, audio)
        frames_seen += end - start
        if model.se is not None:
            with torch.no_grad():
                se_values.append(model(faces[None], audio[None], explain=True).se_weights[0].float().cpu().numpy())
        samples = _grid_picks(number, grid_every, speaking, mouth, faces_np, config.grid_samples, grid)
        for name, explainer in explainers.items():
            explanation = explainer(model, faces[None], audio[None])
            seconds[name][0] += explanation.forward_seconds
            seconds[name][1] += explanation.explain_seconds
            heat = upsample(explanation.maps, size).cpu()
            tally = _Tally()
            if len(boxed):
                hits = pointing_hits(heat[boxed], boxes).float()
                energy = energy_inside(heat[boxed], boxes)
                on_speech = speaking[boxed]
                tally.pointing_all += hits.tolist()
                tally.energy_all += energy.tolist()
                tally.pointing_speaking += hits[on_speech].tolist()
                tally.energy_speaking += energy[on_speech].tolist()
            if speaking.any():
                heat_device = heat.to(device)
                deletion = curve_auc(perturbation_curves(score, faces, heat_device, baseline, config.steps)).cpu()
                insertion = curve_auc(perturbation_curves(score, faces, heat_device, baseline, config.steps,
                                                          insertion=True)).cpu()
                explained = score(explanation_masked(faces, heat_device, baseline)).cpu()
                tally.deletion += deletion[speaking].tolist()
                tally.insertion += insertion[speaking].tolist()
                tally.original += explanation.probs.cpu()[speaking].tolist()
                tally.explained += explained[speaking].tolist()
            totals[name].add(tally)
            per_track[f"{meta.video_id}|{meta.entity_id}"][name].add(tally)
            for sample in samples:
                sample[1].heat[name] = heat[sample[0]].numpy()
    methods = {}
    for name in explainers:
        methods[name] = totals[name].summary()
        methods[name].update(forward_ms_per_frame=1000 * seconds[name][0] / max(frames_seen, 1),
                             explain_ms_per_frame=1000 * seconds[name][1] / max(frames_seen, 1),
                             total_ms_per_frame=1000 * sum(seconds[name]) / max(frames_seen, 1))
    return {"config": asdict(config), "mouth_boxes": [str(p) for p in mouths.sources] if mouths.boxes else None,
            "frames": frames_seen, "windows": len(windows),
            "tracks": len({(m.video_id, m.entity_id) for m, _, _ in windows}), "methods": methods,
            "per_track": {key: {name: tally.summary() for name, tally in tallies.items()}
                          for key, tallies in sorted(per_track.items())},
            "_se_values": se_values, "_grid": grid}


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
            sample = GridSample(faces[k], want, mouth.get(k))
            grid.append(sample)
            picks.append((k, sample))
    return picks
