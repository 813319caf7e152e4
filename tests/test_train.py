"""Training: run folder contents, resume after SIGKILL equals an uninterrupted run, DDP, bad input."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_TRAINING

from asd_se.cli import main
from asd_se.core.errors import EXIT_UNDEFINED
from asd_se.core.errors import CheckpointError, StoreError, TrainingDiverged
from asd_se.models.config import load_config
from asd_se.models.loading import load_checkpoint, load_model
from asd_se.training import loop as train_module
from asd_se.training.loop import Trainer, val_map_cell

TINY = TINY_TRAINING


def _cli_train(store: Path, out: Path, extra: list[str] = ()) -> list[str]:
    args = ["train", "--data", str(store), "--out", str(out)]
    for assignment in [*TINY, *extra]:
        args += ["--set", assignment]
    return args


@pytest.fixture(scope="module")
def trained(trained_run) -> Path:
    return trained_run


def test_a_run_folder_has_everything(trained):
    assert {p.name for p in trained.iterdir()} >= {"last.pt", "best.pt", "metrics.jsonl", "curves.png",
                                                   "config.yaml"}
    history = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [0, 1]
    assert all(h["val_map"] is not None and h["train_fps"] > 0 for h in history)
    # each epoch's interval is recorded; fewer than 3 val videos (this tiny store) give none rather than a fake one
    assert all("val_map_low" in h and (h["val_map_low"] is None or h["val_map_low"] <= h["val_map"] <=
                                       h["val_map_high"]) for h in history)
    payload = load_checkpoint(trained / "last.pt")
    assert payload["epoch"] == 1 and payload["config"]["train"]["epochs"] == 2
    assert {"optimizer", "scheduler", "rng", "model"} <= set(payload)


def test_an_epochs_map_is_reported_with_its_interval_where_one_was_drawn():
    assert val_map_cell({"val_map": 0.96684, "val_map_low": 0.941, "val_map_high": 0.982}) == "96.68 [94.10, 98.20]"
    assert val_map_cell({"val_map": 0.5, "val_map_low": None, "val_map_high": None}) == "50.00"
    assert val_map_cell({"train_loss": 0.3}) is None


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


def _average_precision_by_definition(ranked_positive: list[bool]) -> float:
    """VOC all-point AP written from its definition, independently of asd_se.core.metrics: the mean over the
    positives of the best precision at any rank from theirs on."""
    hits, precisions = 0, []
    for rank, positive in enumerate(ranked_positive, start=1):
        hits += positive
        precisions.append(hits / rank)
    best_from = [max(precisions[i:]) for i in range(len(precisions))]
    return sum(p for p, positive in zip(best_from, ranked_positive) if positive) / sum(ranked_positive)


def test_evaluate_writes_official_predictions_and_its_map_is_the_definitions(store_root, synth_root, trained,
                                                                               tmp_path, capsys):
    out = tmp_path / "pred.csv"
    assert main(["evaluate", "--checkpoint", str(trained / "best.pt"), "--data", str(store_root),
                 "--predictions", str(out)]) == 0
    text = capsys.readouterr().out
    assert "mAP (audio-visual)" in text and "mAP (audio-only head)" in text and "mAP (visual-only head)" in text
    with open(synth_root / "annotations" / "val.csv", newline="") as handle:
        truth = {(r[0], round(float(r[1]), 3), r[7]): r[6] for r in csv.reader(handle)}
    with open(out, newline="") as handle:
        scores = {(r[0], round(float(r[1]), 3), r[7]): float(r[8]) for r in csv.reader(handle)}
    assert scores.keys() == truth.keys()  # one prediction per annotation row, joined by key
    ranked = sorted(truth, key=lambda key: -scores[key])
    expected = _average_precision_by_definition([truth[key] == "SPEAKING_AUDIBLE" for key in ranked])
    printed = float(next(line for line in text.splitlines() if line.startswith("mAP (audio-visual)")).split()[-1])
    assert printed == pytest.approx(100 * expected, abs=0.005)
    history = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert 100 * max(h["val_map"] for h in history) == pytest.approx(printed, abs=0.005)  # what training saw


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

    def poisoned(*args):  # healthy in epoch 1, NaN once its checkpoint exists
        loss = real(*args)
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
