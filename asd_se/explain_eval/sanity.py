"""Sanity checks of explanations (Adebayo et al., "Sanity Checks for Saliency Maps", 2018), and consistency.

Cascading model-parameter randomisation: the model is re-initialised from the output down, one block at a time
(everything after the SE block, then the SE block, then the visual encoder's blocks from the last to the stem),
and after each step every method's maps of the same windows are compared with the trained model's: Spearman
rank correlation on the maps at the explained layer's resolution, SSIM on the maps upsampled onto the crop. A
map that stays the same once the visual encoder is random explains the input, not the model. One random
initialisation is a noisy witness (on the standard set, the mean ρ of the same map moved between 0.13 and 0.28
with the seed): the cascade is repeated for several seeds, and each step reports the mean over seeds beside
each seed's own value. A method passes only if every seed's ρ is below the bar (the report's rule): a mean can
hide one lucky initialisation.

Consistency: the same frame explained from two overlapping windows (the second starts half a window later);
the Pearson correlation of its two maps.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from asd_se.explain.base import Explainer
from asd_se.explain.maps import upsample
from asd_se.models.visual import TwoStreamModel
from asd_se.scoring.engine import score_clip

Clip = tuple[torch.Tensor, torch.Tensor]  # faces (T, S, S) uint8, audio (samples,) float32, on the device
SSIM_SIGMA, SSIM_C1, SSIM_C2 = 1.5, 0.01 ** 2, 0.03 ** 2  # Wang et al. (2004), data range 1


def randomisation_stages(model: TwoStreamModel) -> list[tuple[str, list[nn.Module]]]:
    """``(name, modules)`` from the output down: ``decision`` (every part after the SE block: fusion, back end,
    heads, audio encoder), ``se``, then the visual encoder's blocks (a Sequential's members one by one), last
    first. Blocks without parameters are skipped."""
    visual = []
    for name, child in model.visual.named_children():
        members = [(f"visual.{name}.{i}", m) for i, m in enumerate(child)] if isinstance(child, nn.Sequential) \
            else [(f"visual.{name}", child)]
        visual += [(n, m) for n, m in members if any(True for _ in m.parameters())]
    decision = [m for name, m in model.named_children() if name not in ("visual", "se", "frontend")]
    stages = [("decision", decision)] + ([("se", [model.se])] if model.se is not None else [])
    return stages + [(name, [module]) for name, module in reversed(visual)]


def randomised(model: TwoStreamModel, depth: int, seed: int = 0) -> TwoStreamModel:
    """A copy of ``model`` with the first ``depth`` stages of ``randomisation_stages`` re-initialised (each
    module's own ``reset_parameters``, seeded)."""
    copied = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _, modules in randomisation_stages(copied)[:depth]:
            for module in modules:
                for part in module.modules():
                    if hasattr(part, "reset_parameters"):
                        part.reset_parameters()
    return copied.eval()


def spearman(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``(T,)`` rank correlation of each frame's maps ``(T, h, w)``; 0 where a map is flat (no ranking)."""
    from scipy.stats import spearmanr  # here, not at the top: 0.4 s of every command's start

    values = []
    for x, y in zip(a.reshape(len(a), -1).cpu().numpy(), b.reshape(len(b), -1).cpu().numpy()):
        flat = np.ptp(x) == 0 or np.ptp(y) == 0
        values.append(0.0 if flat else float(spearmanr(x, y).statistic))
    return np.array(values)


def ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``(T,)`` structural similarity of maps ``(T, S, S)`` in [0, 1] (Gaussian window, σ = 1.5)."""
    radius = int(3 * SSIM_SIGMA)
    kernel = torch.exp(-torch.arange(-radius, radius + 1, dtype=torch.float32) ** 2 / (2 * SSIM_SIGMA ** 2))
    kernel = (kernel / kernel.sum()).to(a.device)
    window = (kernel[:, None] * kernel[None, :])[None, None]

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x[:, None].float(), window, padding=radius)[:, 0]

    mean_a, mean_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mean_a ** 2, blur(b * b) - mean_b ** 2
    covariance = blur(a * b) - mean_a * mean_b
    index = ((2 * mean_a * mean_b + SSIM_C1) * (2 * covariance + SSIM_C2)) / \
        ((mean_a ** 2 + mean_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2))
    return index.mean(dim=(1, 2)).cpu().numpy()


def _maps(model: TwoStreamModel, explainers: list[Explainer], clips: list[Clip]) -> dict[str, torch.Tensor]:
    """Each method's maps ``(ΣT, h, w)`` of all ``clips``, concatenated."""
    found: dict[str, list[torch.Tensor]] = {e.name: [] for e in explainers}
    for faces, audio in clips:
        scores = score_clip(model, faces[None], audio[None], explainers)
        for name, maps in scores.maps.items():
            found[name].append(maps.float())
    return {name: torch.cat(parts) for name, parts in found.items()}


@dataclass
class CascadeStep:
    """One depth of the cascade: the stage last re-initialised, and per method the similarities to the trained
    model's maps — the mean over frames and seeds (``spearman``, ``ssim``) and the mean over frames for each
    seed (``spearman_per_seed``, in the order of the seeds)."""

    stage: str
    spearman: dict[str, float]
    ssim: dict[str, float]
    spearman_per_seed: dict[str, list[float]]


def randomisation_cascade(model: TwoStreamModel, explainers: list[Explainer], clips: list[Clip], crop_size: int,
                          seeds: tuple[int, ...] = (0,)) -> list[CascadeStep]:
    """The cascade over ``clips``: one step per stage, from the output down to the stem, each stage
    re-initialised with every seed of ``seeds``."""
    trained = _maps(model, explainers, clips)
    steps = []
    for depth, (stage, _) in enumerate(randomisation_stages(model), start=1):
        rho: dict[str, list[float]] = {e.name: [] for e in explainers}
        similarity: dict[str, list[float]] = {e.name: [] for e in explainers}
        for seed in seeds:
            for name, maps in _maps(randomised(model, depth, seed), explainers, clips).items():
                rho[name].append(float(spearman(trained[name], maps).mean()))
                similarity[name].append(float(ssim(upsample(trained[name], crop_size),
                                                   upsample(maps, crop_size)).mean()))
        steps.append(CascadeStep(stage, {name: float(np.mean(v)) for name, v in rho.items()},
                                 {name: float(np.mean(v)) for name, v in similarity.items()}, rho))
    return steps


def overlap_consistency(model: TwoStreamModel, explainers: list[Explainer], first: Clip, second: Clip,
                        offset: int) -> dict[str, np.ndarray]:
    """Per method, the Pearson correlation ``(K,)`` of the maps of the K frames two clips share, where
    ``second`` starts ``offset`` frames after ``first`` (0 where either map is flat)."""
    a, b = _maps(model, explainers, [first]), _maps(model, explainers, [second])
    found = {}
    for name in a:
        shared = min(len(a[name]) - offset, len(b[name]))
        x = a[name][offset:offset + shared].reshape(shared, -1)
        y = b[name][:shared].reshape(shared, -1)
        x, y = x - x.mean(dim=1, keepdim=True), y - y.mean(dim=1, keepdim=True)
        norm = x.norm(dim=1) * y.norm(dim=1)
        found[name] = torch.where(norm > 0, (x * y).sum(dim=1) / norm.clamp(min=1e-12),
                                  torch.zeros_like(norm)).cpu().numpy()
    return found
