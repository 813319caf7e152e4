"""torchvision's model zoo, also where its wheel cannot load its C ops: PyPI's torchvision is built against CUDA
torch, and with the CPU build of torch its compiled operators (nms, roi_align, ...; never used by the
classification models) fail to load, after which ``import torchvision`` stops at the two operators it registers
unconditionally. Those two are declared (schemas only) and the import retried: the models are pure Python. Used
by the any-model tests and ``scripts/bench_any_model.py``; asd-se itself never imports torchvision."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

import torch

_UNGUARDED_OPS = {"torchvision::nms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                  "torchvision::qnms": "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"}


def torchvision_models() -> ModuleType:
    """``torchvision.models`` (ImportError where torchvision is not installed)."""
    try:
        return importlib.import_module("torchvision.models")
    except RuntimeError as error:
        if "torchvision::nms" not in str(error):
            raise
    for name in [name for name in sys.modules if name.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    for op, schema in _UNGUARDED_OPS.items():
        torch.library.define(op, schema)  # torch keeps the definition alive for the process
    return importlib.import_module("torchvision.models")
