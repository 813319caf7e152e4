"""The checkpoint file: written atomically, read with ``weights_only=True`` onto the CPU, checked before use. Knows
no model and no shipped name (``loading.py`` turns a name or a file into a model)."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import torch

from asd_se.core.errors import CheckpointError, ConfigError
from asd_se.core.fsio import atomic_path, not_a_file
from asd_se.models.config import Config

CHECKPOINT_FORMAT = "asd-se-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, payload: dict) -> None:
    """Write ``payload`` (plain containers and tensors only) atomically."""
    buffer = io.BytesIO()  # serialised first: torch's own file writer reports a full disk as a bare RuntimeError
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}, buffer)
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def read_checkpoint(path: Path, shipped_names: tuple[str, ...] = ()) -> dict:
    """Read a checkpoint file on the CPU without unpickling code; CheckpointError if it is not one (a missing file's
    message lists ``shipped_names``, the names that would have been models)."""
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint (give RUN/best.pt or RUN/last.pt)")
    if not path.is_file():
        shipped = f" (nor a shipped model: {', '.join(shipped_names)})" if shipped_names else ""
        raise CheckpointError(f"{path}: {not_a_file(path, 'checkpoint')}{shipped}")
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
