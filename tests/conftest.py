"""Shared tiny data, built once per test session with the project's own generator (nothing downloaded)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from browser import browser  # noqa: F401 (the real-browser fixture, for the pages' tests)

from asd_se.cli import main
from asd_se.models import ActiveSpeakerModel
from asd_se.models.checkpoint import save_checkpoint
from asd_se.models.config import load_config
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

TINY = SynthConfig(videos=3, minutes=0.1, seed=1)
# On the CPU even where CUDA is present: resume equality needs deterministic kernels (cuDNN's backward passes
# are not) and the gloo test runs two processes on a one-GPU machine. The CUDA path: README, "GPU".
TINY_TRAINING = ["train.epochs=2", "train.frame_budget=100", "train.max_frames=25", "train.min_frames=10",
                 "train.threads=2", "train.device=cpu"]


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """3 synthetic videos of 6 s (2 train, 1 val) in AVA layout."""
    root = tmp_path_factory.mktemp("synth")
    make_dataset(root, TINY, workers=2)
    return root


@pytest.fixture(scope="session")
def store_root(synth_root, tmp_path_factory) -> Path:
    """The track store of ``synth_root`` made by one plain prep run."""
    root = tmp_path_factory.mktemp("store") / "store"
    summary = prepare(PrepConfig((synth_root / "annotations",), synth_root / "videos", root))
    assert summary.exit_code == 0, summary.render()
    return root


@pytest.fixture
def synth_copy(synth_root, tmp_path) -> Path:
    """A private copy of the synthetic set that a test may damage."""
    copy = tmp_path / "data"
    shutil.copytree(synth_root, copy)
    return copy


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained light model saved as a checkpoint: render's plumbing does not depend on its skill."""
    config = load_config(None)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, {"model": ActiveSpeakerModel(config.model).state_dict(), "config": config.to_dict()})
    return path


@pytest.fixture(scope="session")
def trained_run(store_root, tmp_path_factory) -> Path:
    """A run folder (best.pt, last.pt, metrics.jsonl, ...) of ``asd-se train`` on the tiny store: two short
    epochs, trained once per test session through the CLI."""
    out = tmp_path_factory.mktemp("run") / "run"
    args = ["train", "--data", str(store_root), "--out", str(out)]
    for assignment in TINY_TRAINING:
        args += ["--set", assignment]
    assert main(args) == 0
    return out
