"""Training: run folder contents, resume after SIGKILL equals an uninterrupted run, DDP, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asd_se import train as train_module
from asd_se.checkpoint import CheckpointError, load_checkpoint, load_model
from asd_se.cli import EXIT_UNDEFINED, main
from asd_se.config import load_config
from asd_se.train import Trainer, TrainingDiverged
from data_prep.store import StoreError

# On the CPU even where CUDA is present: resume equality needs deterministic kernels (cuDNN's backward passes
# are not) and the gloo test runs two processes on a one-GPU machine. The CUDA path: README, "GPU".
TINY = ["train.epochs=2", "train.frame_budget=100", "train.max_frames=25", "train.min_frames=10",
        "train.threads=2", "train.device=cpu"]


def _cli_train(store: Path, out: Path, extra: list[str] = ()) -> list[str]:
    args = ["train", "--data", str(store), "--out", str(out)]
    for assignment in [*TINY, *extra]:
        args += ["--set", assignment]
    return args


@pytest.fixture(scope="module")
def trained(store_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(_cli_train(store_root, out)) == 0
    return out


def test_a_run_folder_has_everything(trained):
    assert {p.name for p in trained.iterdir()} >= {"last.pt", "best.pt", "metrics.jsonl", "curves.png",
                                                   "config.yaml"}
    history = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1]
    assert all(0 <= h["val_map"] <= 1 and h["train_fps"] > 0 for h in history)
    payload = load_checkpoint(trained / "last.pt")
    assert payload["epoch"] == 1 and payload["config"]["train"]["epochs"] == 2
    assert {"optimizer", "scheduler", "rng", "model"} <= set(payload)


def test_resume_after_sigkill_gives_the_same_weights(store_root, trained, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "asd_se", *_cli_train(store_root, out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "metrics.jsonl").exists():
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert load_checkpoint(out / "last.pt")["epoch"] == 0, "the kill should land during the second epoch"
    assert main(["train", "--data", str(store_root), "--out", str(out), "--resume"]) == 0
    resumed = load_checkpoint(out / "last.pt")["model"]
    straight = load_checkpoint(trained / "last.pt")["model"]
    for name, tensor in straight.items():
        assert torch.allclose(tensor.float(), resumed[name].float(), atol=1e-5), name


def test_two_process_gloo_ddp(store_root, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "asd_se", *_cli_train(store_root, out, ["train.epochs=1", "train.threads=1"])]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(out / "last.pt")["epoch"] == 0


def test_evaluate_writes_official_predictions(store_root, trained, tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(store_root),
                 "--predictions", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mAP (audio-visual)" in text and "mAP (audio-only head)" in text and "mAP (visual-only head)" in text
    lines = out.read_text().splitlines()
    assert len(lines) == sum(len(m.rows.timestamps) for m in
                             __import__("data_prep.store", fromlist=["TrackStore"]).TrackStore.open(
                                 store_root).tracks("val"))


def test_checkpoint_loads_on_cpu_and_refuses_non_weights(trained, tmp_path):
    model, config = load_model(trained / "best.pt", torch.device("cpu"))
    assert config.model.variant == "light" and not model.training
    evil = tmp_path / "evil.pt"
    torch.save({"format": "asd-se-checkpoint", "version": 1, "payload": Path("x")}, evil)
    with pytest.raises(CheckpointError, match="evil.pt: refused"):
        load_checkpoint(evil)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_checkpoint(text)


def test_resuming_with_another_variant_names_the_mismatch(store_root, trained, tmp_path):
    config = load_config(None, [*TINY, "model.variant=resnet18"])
    with pytest.raises(CheckpointError, match="model.variant='light' in the checkpoint, 'resnet18' asked"):
        Trainer(config, store_root, trained, resume=True)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(store_root, tmp_path, monkeypatch):
    out = tmp_path / "run"
    real = train_module.training_loss

    def poisoned(output, labels, aux_weight):  # healthy in epoch 1, NaN once its checkpoint exists
        loss = real(output, labels, aux_weight)
        return loss * float("nan") if (out / "last.pt").exists() else loss

    monkeypatch.setattr(train_module, "training_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 2"):
        Trainer(load_config(None, TINY), store_root, out).fit()
    kept = load_checkpoint(out / "last.pt")
    assert kept["epoch"] == 0
    assert all(torch.isfinite(t.float()).all() for t in kept["model"].values())


def test_empty_store_and_incompatible_store(store_root, tmp_path):
    empty = tmp_path / "empty"
    (empty / "videos").mkdir(parents=True)
    (empty / "store.json").write_text((store_root / "store.json").read_text())
    (empty / "index.jsonl").write_text("")
    with pytest.raises(StoreError, match="no training tracks"):
        Trainer(load_config(None, TINY), empty, tmp_path / "run")
    (empty / "store.json").write_text(json.dumps({"format": "asd-se-track-store", "version": 0, "settings": {}}))
    with pytest.raises(StoreError, match="v0 is not asd-se-track-store v1"):
        Trainer(load_config(None, TINY), empty, tmp_path / "run")


def test_a_split_without_positives_says_map_is_undefined(store_root, trained, tmp_path, capsys):
    import shutil

    silent = tmp_path / "store"
    shutil.copytree(store_root, silent)
    lines = []
    for line in (silent / "index.jsonl").read_text().splitlines():
        meta = json.loads(line)
        meta["rows"]["labels"] = ["NOT_SPEAKING"] * len(meta["rows"]["labels"])
        lines.append(json.dumps(meta))
    (silent / "index.jsonl").write_text("\n".join(lines) + "\n")
    code = main(["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(silent)])
    assert code == EXIT_UNDEFINED
    out = capsys.readouterr().out
    assert "mAP: undefined" in out and "nan" not in out.lower().replace("not_speaking", "")
