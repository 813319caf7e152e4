"""``scripts/ship_model.py``: a fine-tune ships as the tensors its run changed from the shipped base, which rebuild
the run's model on top of the base; a run that says its encoders were frozen but changed them is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from asd_se.models.checkpoint import save_checkpoint

from asd_se.models.loading import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
BASE = "lrasd-talkset-se"
ENCODER, AFTER = "visual.layers.0.0.conv.weight", "se.excite.0.weight"


def _run(folder: Path, freeze: str, changed: tuple[str, ...]) -> Path:
    """A run's checkpoint: the base with ``changed`` tensors moved, its config saying what was frozen."""
    base = load_checkpoint(BASE)
    model = {name: tensor.clone() for name, tensor in base["model"].items()}
    for name in changed:
        model[name] += 0.25
    config = {**base["config"], "train": {**base["config"]["train"], "freeze": freeze}}
    path = folder / f"{freeze}.pt"
    save_checkpoint(path, {"config": config, "model": model, "metrics": {"val_map": 0.5}})
    return path


def _ship(run: Path, folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    manifest, figures, out = folder / "manifest.json", folder / "figures.json", folder / "shipped.pt"
    manifest.write_text(json.dumps({"splits": {"ID1": "train", "ID2": "val"}, "videos": {"train": 3, "val": 1},
                                    "face_frames": {"own": 400}, "sources": ["a.mp4", "b.mp4"], "skipped": [],
                                    "settings": {"licence": "none stated"}}))
    figures.write_text(json.dumps({"map_all": {"map": 50.0}}))
    result = subprocess.run([sys.executable, "-W", "ignore", str(ROOT / "scripts" / "ship_model.py"), str(run),
                             "--base", BASE, "--manifest", str(manifest), "--figures", str(figures), "-o", str(out)],
                            capture_output=True, text=True, timeout=120)
    return result, out


def test_a_whole_fine_tune_ships_every_tensor_it_changed_encoders_included(tmp_path):
    run = _run(tmp_path, "none", (ENCODER, AFTER))
    result, out = _ship(run, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    shipped = torch.load(out, weights_only=True)
    assert set(shipped["model"]) == {ENCODER, AFTER}
    assert "nothing frozen" in shipped["source"]["trained_by"] and shipped["source"]["init"] == BASE
    rebuilt = {**load_checkpoint(BASE)["model"], **shipped["model"]}
    for name, tensor in load_checkpoint(run)["model"].items():
        assert torch.equal(rebuilt[name], tensor), name


def test_a_frozen_encoder_run_whose_encoders_moved_is_refused_and_nothing_written(tmp_path):
    result, out = _ship(_run(tmp_path, "encoders", (ENCODER, AFTER)), tmp_path)
    assert result.returncode != 0 and "encoders.pt" in result.stderr and ENCODER in result.stderr
    assert not out.exists()
