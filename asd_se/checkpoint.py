"""Checkpoints: written atomically, read with ``weights_only=True`` onto the CPU, checked before use."""

from __future__ import annotations

import io
import logging
import pickle
import zipfile
from pathlib import Path

import torch

from asd_se.config import Config
from asd_se.core.errors import AsdSeError, ConfigError
from asd_se.core.fsio import atomic_path, not_a_file
from asd_se.models import AsdModel, build_model
from asd_se.models.visual import channels_last_convolutions

log = logging.getLogger(__name__)

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
    shipped model (``asd-se models``) where no such file is gives that model, made from the package's weights;
    a file of that name is used instead, with a warning saying so."""
    from asd_se.zoo import SHIPPED, shipped_payload

    path = Path(path)
    if str(path) in SHIPPED:
        if not path.exists():
            return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **shipped_payload(str(path))}
        log.warning("%s: a file of this name is here, so it is used, not the shipped model of the same name "
                    "(give another path to the file, or move it, to use the shipped one)", path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint (give RUN/best.pt or RUN/last.pt)")
    if not path.is_file():
        raise CheckpointError(f"{path}: {not_a_file(path, 'checkpoint')} (nor a shipped model: "
                              f"{', '.join(SHIPPED)})")
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


def checkpoint_config(payload: dict, path: Path | str) -> Config:
    """The config a checkpoint's ``payload`` records; CheckpointError naming ``path`` where it has none or one that
    cannot be used (unknown keys, values out of range: a file written by another version, or edited)."""
    data = payload.get("config")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: holds no model config (its 'config' is {type(data).__name__}); not a "
                              f"checkpoint asd-se wrote")
    try:
        return Config.from_dict(data)
    except ConfigError as err:
        raise CheckpointError(f"{path}: its config cannot be used: {err}") from err


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


RUNTIMES = ("torch", "onnx")


def load_runtime(path: Path, device: torch.device, runtime: str = "torch") -> tuple[AsdModel, Config]:
    """``load_model``, or with ``runtime="onnx"`` the model of an .onnx file written by ``asd-se export onnx``
    (``OnnxAsdModel``: onnxruntime on the CPU)."""
    if runtime == "torch":
        return load_model(path, device)
    from asd_se.models.onnx_model import OnnxAsdModel
    from asd_se.zoo import SHIPPED

    if str(path) in SHIPPED and not Path(path).exists():
        raise CheckpointError(f"{path}: a shipped model, not an .onnx file; export it first: asd-se export onnx "
                              f"{path} -o {path}.onnx, then --checkpoint {path}.onnx")
    if device.type != "cpu":
        raise CheckpointError(f"{path}: --runtime onnx runs on the CPU (onnxruntime's CPU provider); use "
                              f"--device cpu, or --runtime torch on {device}")
    model = OnnxAsdModel(path)
    return model, model.config
