"""Explanations: SE maps (one forward pass) and the gradient-family baselines they are measured against; SE maps of
any PyTorch model (``insert_se``, ``SqueezeExplainer``, ``SeGates``)."""

from __future__ import annotations

from asd_se.core.errors import ConfigError
from asd_se.explain.anymodel import Explanation, SeGates, SqueezeExplainer, insert_se
from asd_se.explain.base import Explainer
from asd_se.explain.centre import CentreBaseline
from asd_se.explain.eigencam import EigenCam
from asd_se.explain.gradcam import GradCam
from asd_se.explain.gradcampp import GradCamPlusPlus
from asd_se.explain.se_map import ChannelSelection, SeContrastExplainer, SeExplainer

EXPLAINERS = ("se", "gradcam", "gradcampp", "eigencam", "se_contrast")  # se_contrast: beyond the paper
SE_EXPLAINERS = ("se", "se_contrast")  # the maps that need the model's SE vector
BASELINES = ("centre",)  # maps that explain nothing, measured beside the explainers (explain-eval only)


def build_explainer(name: str, selection: ChannelSelection = ChannelSelection()) -> Explainer:
    """The explainer called ``name`` (one of ``EXPLAINERS`` or ``BASELINES``); ``selection`` is for the SE map."""
    se_methods = {"se": SeExplainer, "se_contrast": SeContrastExplainer}
    if name in se_methods:
        return se_methods[name](selection)
    methods = {"gradcam": GradCam, "gradcampp": GradCamPlusPlus, "eigencam": EigenCam, "centre": CentreBaseline}
    if name not in methods:
        raise ConfigError(f"explainer must be one of {', '.join(EXPLAINERS + BASELINES)}, not {name!r}")
    return methods[name]()


__all__ = ["BASELINES", "EXPLAINERS", "SE_EXPLAINERS", "ChannelSelection", "Explainer", "Explanation",
           "SeGates", "SqueezeExplainer", "build_explainer", "insert_se"]
