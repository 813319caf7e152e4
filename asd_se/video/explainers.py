"""The heatmap method for a model as render and live choose it, and where each map peaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from asd_se.core.errors import ConfigError, RenderError
from asd_se.explain import SE_EXPLAINERS, ChannelSelection, Explainer, build_explainer
from asd_se.explain.maps import peaks, upsample

PEAK_CHUNK = 1000  # samples whose maps are upsampled at once to find their peaks


def map_peaks(maps: np.ndarray, crop_size: int) -> np.ndarray:
    """``(T, 2)`` the peak of each map ``(T, h, w)``, located on a half-resolution grid of the crop: within one
    crop pixel, at a quarter of the cost."""
    located = np.concatenate([peaks(upsample(torch.from_numpy(maps[i:i + PEAK_CHUNK]), crop_size // 2)).numpy()
                              for i in range(0, len(maps), PEAK_CHUNK)])
    located[maps.reshape(len(maps), -1).max(axis=1) <= 0] = np.nan  # an all-zero map has no peak
    return located


def choose_explainer(model, checkpoint: Path, name: str, selection: ChannelSelection, runtime: str
                     ) -> tuple[Explainer, bool, list[str]]:
    """The heatmap method for ``model`` (``name`` as ``--explainer`` gives it; auto: se where the model has an SE
    block, else Grad-CAM under torch and Eigen-CAM under onnxruntime), whether its SE vector carries information
    (a trained block), and notes for the user. RenderError for a choice the model or runtime cannot give."""
    notes = []
    if model.se is None and name in ("auto", *SE_EXPLAINERS):
        if name != "auto":
            raise RenderError(f"{checkpoint}: the model has no SE block, so it has no SE maps; use --explainer "
                              f"gradcam (or gradcampp, eigencam), or fine-tune it with one (asd-se train --init)")
        name, shown = ("gradcam", "Grad-CAM") if runtime == "torch" else ("eigencam", "Eigen-CAM")
        notes.append(f"{checkpoint}: the model has no SE block; heatmaps are {shown}'s")
    se_informative = model.se is not None and not model.se.untrained
    if model.se is not None and not se_informative:
        if name == "se_contrast":
            raise RenderError(f"{checkpoint}: its SE block is untrained (identity start), so se_contrast has no "
                              f"channel selection to work on; use --explainer se, gradcam or eigencam, or fine-tune "
                              f"the block first (asd-se train --init)")
        notes.append(f"{checkpoint}: its SE block is untrained (identity start: every channel weighs the same), so "
                     f"the SE map is the mean of all channels and no SE channels are reported; fine-tune it "
                     f"(asd-se train --init) for the paper's explanation")
    return build_explainer("se" if name == "auto" else name, selection), se_informative, notes


def check_runtime_explainer(runtime: str, explainer: str) -> None:
    """ConfigError (a conflict of arguments, before any work) where ``--explainer`` needs gradients that
    ``--runtime`` does not give."""
    if runtime != "torch" and explainer != "auto" and build_explainer(explainer).needs_gradients:
        raise ConfigError(f"--explainer {explainer} needs gradients, which --runtime {runtime} (onnxruntime) does "
                          f"not give; use --explainer se (or se_contrast, eigencam), or --runtime torch")
