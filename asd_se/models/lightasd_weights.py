"""``asd-se import lightasd``: Light-ASD's published state dicts (``pretrain_AVA_CVPR.model``,
``finetuning_TalkSet.model``; keys ``model.*``, ``lossAV.*``, ``lossV.*``) -> an asd-se checkpoint of
``LightAsdModel``, through a name map. The checkpoint records its config (front end and crop ``lightasd``), the
source file's name and sha256, and the licence found beside it. With ``se``, the SE block is inserted at its
identity start, so the imported model's outputs are the original's until fine-tuning moves it.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from pathlib import Path

import torch

from asd_se.checkpoint import CHECKPOINT_FORMAT, CheckpointError, save_checkpoint
from asd_se.config import Config, ModelConfig
from asd_se.models.lightasd import LightAsdModel

# Parts of a Light-ASD block -> parts of MultiScaleBlock (visual s/t and audio m/t: first/second convolution).
BLOCK_PARTS = {"s_3": "branches.0.first", "m_3": "branches.0.first", "t_3": "branches.0.second",
               "s_5": "branches.1.first", "m_5": "branches.1.first", "t_5": "branches.1.second", "last": "merge"}
PREFIXES = (("model.visualEncoder.", "visual.layers."), ("model.audioEncoder.", "audio.layers."),
            ("model.GRU.gru_forward.", "backend.forward_gru."), ("model.GRU.gru_backward.", "backend.backward_gru."),
            ("lossAV.FC.", "head."), ("lossV.FC.", "visual_head."))
NEW_IN_ASD_SE = ("audio_head.", "se.")  # parameters the published files do not have
BLOCK_KEY = re.compile(r"^block(\d)\.(bn_)?([a-z]+_\d|last)\.(.+)$")
SOURCE = "Light-ASD (Liao et al., CVPR 2023), https://github.com/Junhua-Liao/Light-ASD"


def asd_se_name(key: str) -> str | None:
    """The LightAsdModel parameter a Light-ASD state-dict key names, or None if it names none."""
    for theirs, ours in PREFIXES:
        if not key.startswith(theirs):
            continue
        rest = key[len(theirs):]
        if ours.endswith("layers."):  # blocks 1, 2, 3 sit at 0, 2, 4 (max-pools between them)
            match = BLOCK_KEY.match(rest)
            if match is None or match[3] not in BLOCK_PARTS:
                return None
            block, norm, part, tail = match.groups()
            return f"{ours}{2 * (int(block) - 1)}.{BLOCK_PARTS[part]}{'_bn' if norm else ''}.{tail}"
        return ours + rest
    return None


def lightasd_config(se: bool) -> ModelConfig:
    """The model config of an imported Light-ASD checkpoint."""
    return ModelConfig(variant="lightasd", map_size=14, frontend="lightasd", crop="lightasd", se=se, se_identity=True)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a Light-ASD weight file (not a torch.save archive; truncated?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: not a readable Light-ASD weight file ({type(err).__name__}: {err})") from err
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: is already an asd-se checkpoint; use it as it is (--checkpoint)")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a Light-ASD state dict (expected a mapping of names to tensors)")
    return state


def map_state_dict(state: dict[str, torch.Tensor], path: Path, model: LightAsdModel) -> dict[str, torch.Tensor]:
    """Light-ASD's ``state`` renamed for ``model``; CheckpointError naming the unknown, missing or misshapen."""
    own = model.state_dict()
    mapped, unknown, misshapen = {}, [], []
    for key, tensor in state.items():
        name = asd_se_name(key)
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
        raise CheckpointError(f"{path}: not a Light-ASD state dict: " + ", ".join(p for p in problems if p))
    return mapped


def lightasd_payload(weights: Path, se: bool = False) -> dict:
    """The asd-se checkpoint payload (config, state dict, source) of Light-ASD's ``weights``, in memory;
    CheckpointError if they do not fit. The parts the published files lack (asd-se's audio-only head, the SE
    block's first layer) start from seed 0, so every import of one file is the same checkpoint."""
    weights = Path(weights)
    config = Config(model=lightasd_config(se))
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(0)
        model = LightAsdModel(config.model)
    model.load_state_dict(map_state_dict(_read_state_dict(weights), weights, model), strict=False)
    licence = weights.parent / "LICENSE"
    return {"config": config.to_dict(), "model": model.state_dict(),
            "source": {"origin": SOURCE, "file": weights.name,
                       "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                       "licence": licence.read_text() if licence.is_file() else "MIT (see origin)"}}


def import_lightasd(weights: Path, out: Path, se: bool = False) -> Config:
    """Write the asd-se checkpoint ``out`` of Light-ASD's ``weights`` (nothing is written if they do not fit)."""
    weights, out = Path(weights), Path(out)
    if out.exists() and out.resolve() == weights.resolve():
        raise CheckpointError(f"{out}: would overwrite the weight file it is made from; choose another -o")
    payload = lightasd_payload(weights, se)
    save_checkpoint(out, payload)
    return Config.from_dict(payload["config"])
