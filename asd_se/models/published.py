"""Published ASD weights (Light-ASD's, LR-ASD's) -> asd-se checkpoints: read a foreign state dict safely, rename
its keys for asd-se's own modules through the family's name map, and refuse anything that does not fit — the
unknown, missing or misshapen named — before anything is written. Each family (``Family``) brings its model
variant and its name map (``lightasd_weights.py``, ``lrasd_weights.py``); both use Light-ASD's pre-processing.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from asd_se.core.errors import CheckpointError
from asd_se.models import build_model
from asd_se.models.checkpoint import CHECKPOINT_FORMAT, save_checkpoint
from asd_se.models.config import Config, ModelConfig

NEW_IN_ASD_SE = ("audio_head.", "se.")  # parameters no published file has


@dataclass(frozen=True)
class Family:
    """A published model family: its name, asd-se variant, where it comes from, and its name map (a published
    key -> the asd-se parameter it names, or None)."""

    name: str
    variant: str
    source: str
    rename: Callable[[str], str | None]


def prefix_renamer(prefixes: tuple[tuple[str, str], ...], block_part: Callable[[str], str | None]
                   ) -> Callable[[str], str | None]:
    """A name map from ``(published prefix, asd-se prefix)`` pairs; under an asd-se prefix ending in ``layers.``
    (an encoder's blocks) ``block_part`` renames the rest of the key (None: a key it does not know)."""
    def rename(key: str) -> str | None:
        for theirs, ours in prefixes:
            if key.startswith(theirs):
                rest = key[len(theirs):]
                if not ours.endswith("layers."):
                    return ours + rest
                part = block_part(rest)
                return None if part is None else ours + part
        return None
    return rename


def block_index(block: str) -> int:
    """Where published block N (1, 2, 3) sits in asd-se's encoder layers: 0, 2, 4 (max-pools between them)."""
    return 2 * (int(block) - 1)


def model_config(family: Family, se: bool) -> ModelConfig:
    """The model config of an imported checkpoint of ``family`` (Light-ASD's MFCC and crop)."""
    return ModelConfig(variant=family.variant, map_size=14, frontend="lightasd", crop="lightasd", se=se,
                       se_identity=True)


def read_state_dict(path: Path, family: Family) -> dict[str, torch.Tensor]:
    """The tensors of a published weight file, loaded without unpickling code; CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a {family.name} weight file (not a torch.save archive; truncated?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: not a readable {family.name} weight file ({type(err).__name__}: {err})") \
            from err
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: is already an asd-se checkpoint; use it as it is (--checkpoint)")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a {family.name} state dict (expected a mapping of names to tensors)")
    return state


def map_state_dict(state: dict[str, torch.Tensor], path: Path, model: torch.nn.Module, family: Family
                   ) -> dict[str, torch.Tensor]:
    """``state`` renamed for ``model``; CheckpointError naming the unknown, missing or misshapen keys."""
    own = model.state_dict()
    mapped, unknown, misshapen = {}, [], []
    for key, tensor in state.items():
        name = family.rename(key)
        if name is None or name not in own:
            unknown.append(key)
        elif own[name].shape != tensor.shape:
            misshapen.append(f"{key} {tuple(tensor.shape)} (expected {tuple(own[name].shape)})")
        else:
            mapped[name] = tensor
    missing = [k for k in own if k not in mapped and not k.startswith(NEW_IN_ASD_SE)]
    problems = [f"{len(unknown)} unknown keys (e.g. {', '.join(unknown[:3])})" if unknown else "",
                f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
                f"wrong shapes: {'; '.join(misshapen[:3])}" if misshapen else ""]
    if any(problems):
        raise CheckpointError(f"{path}: not a {family.name} state dict: " + ", ".join(p for p in problems if p))
    return mapped


def published_payload(weights: Path, family: Family, se: bool = False) -> dict:
    """The asd-se checkpoint payload (config, state dict, source) of ``family``'s published ``weights``, in
    memory. The parts the published files lack (asd-se's audio-only head, the SE block's first layer) start from
    seed 0, so every import of one file is the same checkpoint."""
    weights = Path(weights)
    config = Config(model=model_config(family, se))
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(0)
        model = build_model(config.model)
    model.load_state_dict(map_state_dict(read_state_dict(weights, family), weights, model, family), strict=False)
    licence = weights.parent / "LICENSE"
    return {"config": config.to_dict(), "model": model.state_dict(),
            "source": {"origin": family.source, "file": weights.name,
                       "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                       "licence": licence.read_text() if licence.is_file() else "MIT (see origin)"}}


def import_published(weights: Path, out: Path, family: Family, se: bool = False) -> Config:
    """Write the asd-se checkpoint ``out`` of ``family``'s ``weights`` (nothing is written if they do not fit)."""
    payload = published_payload(weights, family, se)
    save_checkpoint(out, payload)
    return Config.from_dict(payload["config"])
