"""Explanations: SE maps (one forward pass) and the gradient-family baselines they are measured against."""

from __future__ import annotations

from asd_se.explain.base import Explainer, Explanation
from asd_se.explain.eigencam import EigenCam
from asd_se.explain.gradcam import GradCam
from asd_se.explain.gradcampp import GradCamPlusPlus
from asd_se.explain.se_map import SeExplainer

EXPLAINERS = ("se", "gradcam", "gradcampp", "eigencam")


def build_explainer(name: str, se_select: str = "threshold", se_top: float = 0.1) -> Explainer:
    """The explainer called ``name`` (one of ``EXPLAINERS``)."""
    if name == "se":
        return SeExplainer(se_select, se_top)
    methods = {"gradcam": GradCam, "gradcampp": GradCamPlusPlus, "eigencam": EigenCam}
    if name not in methods:
        raise ValueError(f"explainer must be one of {', '.join(EXPLAINERS)}, not {name!r}")
    return methods[name]()


__all__ = ["EXPLAINERS", "Explainer", "Explanation", "build_explainer"]
