"""Checkpoints: written atomically, read with ``weights_only=True`` onto the CPU, checked before use."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from asd_se.config import Config
from asd_se.core.errors import AsdSeError
from asd_se.core.fsio import atomic_path
from asd_se.models import AsdModel, build_model
from asd_se.models.visual import channels_last_convolutions

CHECKPOINT_FORMAT = "asd-se-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(AsdSeError):
    """A file that is not a usable asd-se checkpoint; the message names it and why."""


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` (plain containers and tensors only) atomically."""
    buffer = io.BytesIO()  # serialised first: torch's own file writer reports a full disk as a bare RuntimeError
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}, buffer)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def load_checkpoint(path: Path | str) -> dict:
    """Read a checkpoint on the CPU without unpickling code; CheckpointError if it is not one. A name of a
    shipped model (``asd-se models``) where no such file is gives that model, made from the package's weights."""
    from asd_se.zoo import SHIPPED, shipped_payload

    path = Path(path)
    if not path.exists() and str(path) in SHIPPED:
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **shipped_payload(str(path))}
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint (give RUN/best.pt or RUN/last.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (nor a shipped model: {', '.join(SHIPPED)})")
    if not zipfile.is_zipfile(path):  # torch.save has written zip archives since torch 1.6
        raise CheckpointError(f"{path}: not a readable torch checkpoint (not a torch.save archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: refused — holds objects beyond weights (weights_only load: {err})") from err
    except Exception as err:  # the weights-only unpickler raises many kinds on foreign files
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an asd-se checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')}, expected {CHECKPOINT_VERSION}")
    return payload


def model_mismatch(saved: dict, wanted: dict) -> str | None:
    """A sentence naming what differs between two model configs, or None."""
    diffs = [f"model.{k}={saved.get(k)!r} in the checkpoint, {wanted.get(k)!r} asked"
             for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    return "; ".join(diffs) or None


def load_model(path: Path, device: torch.device) -> tuple[AsdModel, Config]:
    """The model a checkpoint holds, built from its own config, in eval mode on ``device``."""
    payload = load_checkpoint(path)
    config = Config.from_dict(payload["config"])
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


RUNTIMES = ("torch", "onnx")


def load_runtime(path: Path, device: torch.device, runtime: str = "torch") -> tuple[AsdModel, Config]:
    """``load_model``, or with ``runtime="onnx"`` the model of an .onnx file written by ``asd-se export onnx``
    (``OnnxAsdModel``: onnxruntime on the CPU)."""
    if runtime == "torch":
        return load_model(path, device)
    from asd_se.models.onnx_model import OnnxAsdModel

    if device.type != "cpu":
        raise CheckpointError(f"{path}: --runtime onnx runs on the CPU (onnxruntime's CPU provider); use "
                              f"--device cpu, or --runtime torch on {device}")
    model = OnnxAsdModel(path)
    return model, model.config
