"""A checkpoint by name or path, turned into a model or a runtime: the one place above the file format
(``checkpoint.py``), the shipped models (``zoo.py``) and the ONNX runtime."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from asd_se.models import AsdModel, build_model
from asd_se.models.checkpoint import (CHECKPOINT_FORMAT, CHECKPOINT_VERSION, CheckpointError, checkpoint_config,
                               read_checkpoint)
from asd_se.models.config import Config
from asd_se.models.onnx_model import OnnxAsdModel
from asd_se.models.visual import channels_last_convolutions
from asd_se.models.zoo import SHIPPED, shipped_payload

log = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnx")


def load_checkpoint(path: Path | str) -> dict:
    """Read a checkpoint on the CPU without unpickling code; CheckpointError if it is not one. A name of a
    shipped model (``asd-se models``) where no such file is gives that model, made from the package's weights;
    a file of that name is used instead, with a warning saying so."""
    path = Path(path)
    if str(path) in SHIPPED:
        if not path.exists():
            return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **shipped_payload(str(path))}
        log.warning("%s: a file of this name is here, so it is used, not the shipped model of the same name "
                    "(give another path to the file, or move it, to use the shipped one)", path)
    return read_checkpoint(path, tuple(SHIPPED))


def load_model(path: Path, device: torch.device) -> tuple[AsdModel, Config]:
    """The model a checkpoint holds, built from its own config, in eval mode on ``device``."""
    payload = load_checkpoint(path)
    config = checkpoint_config(payload, path)
    model = build_model(config.model)
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the model its config describes ({err})") from err
    broken = [name for name, tensor in model.state_dict().items()
              if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise CheckpointError(f"{path}: {len(broken)} weight tensor(s) hold NaN or infinite values ({broken[0]}"
                              f"{', ...' if len(broken) > 1 else ''}); the training that wrote it diverged")
    model.source = str(path)  # named by the scoring engine's finite-output check
    return channels_last_convolutions(model.to(device)).eval(), config


def load_runtime(path: Path, device: torch.device, runtime: str = "torch") -> tuple[AsdModel, Config]:
    """``load_model``, or with ``runtime="onnx"`` the model of an .onnx file written by ``asd-se export onnx``
    (``OnnxAsdModel``: onnxruntime on the CPU)."""
    if runtime == "torch":
        return load_model(path, device)
    if str(path) in SHIPPED and not Path(path).exists():
        raise CheckpointError(f"{path}: a shipped model, not an .onnx file; export it first: asd-se export onnx "
                              f"{path} -o {path}.onnx, then --checkpoint {path}.onnx")
    if device.type != "cpu":
        raise CheckpointError(f"{path}: --runtime onnx runs on the CPU (onnxruntime's CPU provider); use "
                              f"--device cpu, or --runtime torch on {device}")
    model = OnnxAsdModel(path)
    return model, model.config
