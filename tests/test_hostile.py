"""The hostile-input suite: every command given what a careless user or script gives it. Each case asserts the
exit code, that the message names the file (or option), that no partial output is left, and that every input's
bytes are unchanged (hashed before and after). The rules (docs/guide.md, "What asd-se promises"): no command writes
over a path it reads; outputs appear all together or not at all; bad arguments exit 2, unusable input 1, Ctrl-C 130."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from asd_se.models.checkpoint import save_checkpoint

from asd_se.cli import main
from asd_se.core.annotations import read_csv
from asd_se.core.errors import NonFiniteOutput
from asd_se.core.fsio import STAGING_PREFIX
from asd_se.core.media import probe
from asd_se.models import ActiveSpeakerModel
from asd_se.models.config import load_config
from asd_se.models.loading import load_checkpoint
from asd_se.models.zoo import SHIPPED
from asd_se.render.pipeline import RenderSettings, render_video
from asd_se.review.document import read_render
from asd_se.scoring.engine import score_clip
from media_kit import check_stream, decoded_frames, joined, read_lines, remuxed, restamped, to_ts

TINY_TRAIN = ["--set", "train.epochs=1", "--set", "train.frame_budget=100", "--set", "train.max_frames=25",
              "--set", "train.min_frames=10", "--set", "train.device=cpu", "--set", "train.bootstrap=0"]


def snapshot(paths: list[Path]) -> dict[str, str]:
    """sha256 of every file under ``paths`` (files or folders, recursively), by path."""
    found = {}
    for root in paths:
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run(argv: list[str]) -> int:
    try:
        return main([str(a) for a in argv])
    except SystemExit as stop:  # argparse: exit 2 for a bad argument
        return int(stop.code)


@dataclass
class World:
    """What the cases work on: a private folder (``tmp``, watched whole) and the shared fixtures."""

    tmp: Path
    synth: Path
    store: Path
    checkpoint: Path
    render_json: Path

    @property
    def video(self) -> Path:
        return self.tmp / "in.mp4"

    @property
    def csv(self) -> Path:
        return self.tmp / "val.csv"

    def store_copy(self) -> Path:
        copy = self.tmp / "store"
        if not copy.exists():
            shutil.copytree(self.store, copy)
        return copy

    def checkpoint_with(self, change: Callable[[dict], None], name: str = "changed.pt") -> Path:
        payload = load_checkpoint(self.checkpoint)
        change(payload)
        path = self.tmp / name
        save_checkpoint(path, {k: v for k, v in payload.items() if k not in ("format", "version")})
        return path

    def file(self, name: str, text: str = "x\n") -> Path:
        path = self.tmp / name
        path.write_text(text)
        return path

    def run_folder(self) -> Path:
        run_dir = self.tmp / "run"
        run_dir.mkdir(exist_ok=True)
        shutil.copy(self.checkpoint, run_dir / "best.pt")
        shutil.copy(self.checkpoint, run_dir / "last.pt")
        (run_dir / "metrics.jsonl").write_text('{"epoch": 0}\n')
        return run_dir


@pytest.fixture(scope="module")
def render_json(synth_root, checkpoint, tmp_path_factory) -> Path:
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    out = tmp_path_factory.mktemp("hostile_render") / "r.mp4"
    render_video(synth_root / "videos" / f"{rows[0].video_id}.mp4", checkpoint, out,
                 settings=RenderSettings(preset="ultrafast", detect_every=10), progress=False)
    return out.with_suffix(".json")


@pytest.fixture
def world(tmp_path, synth_root, store_root, checkpoint, render_json) -> World:
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    private = tmp_path / "w"
    private.mkdir()
    shutil.copy(synth_root / "videos" / f"{rows[0].video_id}.mp4", private / "in.mp4")
    shutil.copy(synth_root / "annotations" / "val.csv", private / "val.csv")
    return World(private, synth_root, store_root, checkpoint, render_json)


def _nan_weights(payload: dict) -> None:
    name = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][name] = payload["model"][name] * float("nan")


def _review_copy(w: World, change: Callable[[dict], None] | None = None) -> Path:
    data = json.loads(w.render_json.read_text())
    if change:
        change(data)
    path = w.tmp / "r.json"
    path.write_text(json.dumps(data))
    return path


def _string_prob(data: dict) -> None:
    data["tracks"][0]["frames"][3]["prob"] = "0.9"


def _store_damaged(w: World, how: str) -> Path:
    store = w.store_copy()
    if how == "index":
        lines = (store / "index.jsonl").read_text().splitlines()
        (store / "index.jsonl").write_text("\n".join([lines[0], '{"video_id": "x", "frames": ', *lines[1:]]))
    elif how == "npz":
        for npz in (store / "videos").glob("*.npz"):
            npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    elif how == "store_json":
        header = json.loads((store / "store.json").read_text())
        header["settings"]["crop_size"] = "big"
        (store / "store.json").write_text(json.dumps(header))
    return store


def _ava_rows(w: World, *timestamps: str) -> Path:
    first = w.csv.read_text().splitlines()[0].split(",")
    lines = [",".join([first[0], stamp, *first[2:]]) for stamp in timestamps]
    return w.file("bad.csv", "\n".join(lines) + "\n")


def _prep(w: World, annotations: Path, out: Path | None = None) -> list:
    videos = w.tmp / "videos"
    if not videos.exists():
        videos.mkdir()
        shutil.copy(w.video, videos / f"{read_csv(w.csv)[0][0].video_id}.mp4")
    return ["prep", "--annotations", annotations, "--videos", videos, "--out", out or w.tmp / "store_out"]


def _no_config(payload: dict) -> None:
    del payload["config"]


def _string_config(payload: dict) -> None:
    payload["config"] = "light"


def _huge_embedding(payload: dict) -> None:
    payload["config"]["model"]["embed_dim"] = 10 ** 12


def _unknown_key(payload: dict) -> None:
    payload["config"]["model"]["colour"] = "red"


def _fifo(w: World) -> Path:
    """A named pipe in the private folder (nothing ever writes into it: a reader would wait for ever)."""
    path = w.tmp / "in.fifo"
    if not path.exists():
        os.mkfifo(path)
    return path


def _bom(w: World) -> Path:
    return w.file("bom.csv", "\ufeff" + w.csv.read_text())


# (case id, argv builder, exit code, text the message must contain — "{tmp}" is the private folder)
CASES: list[tuple[str, Callable[[World], list], int, str]] = [
    # 1. an output that would destroy an input
    ("evaluate-predictions-over-checkpoint",
     lambda w: ["evaluate", "--checkpoint", shutil.copy(w.checkpoint, w.tmp / "c.pt"), "--data", w.store,
                "--predictions", w.tmp / "c.pt"], 1, "is an input of this command"),
    ("evaluate-predictions-into-store",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store_copy(), "--predictions",
                w.tmp / "store" / "index.jsonl"], 1, "is an input of this command"),
    ("render-csv-over-its-annotations",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--annotations", w.csv, "-o", w.tmp / "val.mp4"],
     1, "val.csv: is an input"),
    ("render-over-its-checkpoint",
     lambda w: ["render", w.video, "--checkpoint", shutil.copy(w.checkpoint, w.tmp / "m.mp4"), "-o",
                w.tmp / "m.mp4"], 1, "is an input"),
    ("review-over-its-json",
     lambda w: ["review", _review_copy(w), "-o", w.tmp / "r.json", "--force"], 1, "r.json: is an input"),
    ("segments-over-its-json",
     lambda w: ["segments", _review_copy(w), "-o", w.tmp / "r.json", "--force"], 1, "r.json: is an input"),
    ("train-into-an-existing-run",
     lambda w: ["train", "--data", w.store, "--out", w.run_folder(), *TINY_TRAIN], 1, "holds a run already"),
    ("train-init-from-the-run-it-replaces",
     lambda w: ["train", "--data", w.store, "--out", w.run_folder(), "--init", w.tmp / "run" / "best.pt",
                "--force", *TINY_TRAIN], 1, "best.pt: is an input"),
    ("train-into-the-store",
     lambda w: ["train", "--data", w.store_copy(), "--out", w.tmp / "store", *TINY_TRAIN], 1, "is an input"),
    ("train-resume-and-force",
     lambda w: ["train", "--data", w.store, "--out", w.run_folder(), "--resume", "--force"], 1, "give one of them"),
    ("train-features-into-the-store",
     lambda w: ["train", "--data", w.store_copy(), "--out", w.tmp / "frozen", "--features", w.tmp / "store" / "f",
                "--set", "train.freeze=encoders", *TINY_TRAIN], 1, "is an input"),
    ("train-resume-nothing",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "new_run", "--resume"], 1, "nothing to resume"),
    ("import-over-its-weights",
     lambda w: ["import", "lightasd", w.file("w.model"), "-o", w.tmp / "w.model"], 1, "is an input"),
    ("export-over-its-checkpoint",
     lambda w: ["export", "onnx", w.checkpoint, "-o", w.checkpoint], 1, "is an input"),
    ("export-not-a-checkpoint",
     lambda w: ["export", "onnx", w.file("w.model"), "-o", w.tmp / "m.onnx"], 1, "w.model"),
    ("export-format-unknown",
     lambda w: ["export", "tflite", w.checkpoint, "-o", w.tmp / "m.tflite"], 2, "invalid choice"),
    ("prep-into-the-video-folder",
     lambda w: _prep(w, w.csv, w.tmp / "videos"), 1, "is an input"),
    ("prep-store-over-the-annotations",
     lambda w: _prep(w, w.csv, w.csv), 1, "val.csv: is an input"),
    ("merge-into-a-source",
     lambda w: ["merge", "--out", w.store_copy(), w.tmp / "store"], 1, "is an input"),
    ("explain-eval-into-the-store",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint, "--data", w.store_copy(), "--out", w.tmp / "store"],
     1, "is an input"),
    # 2. garbage that would pass as a result
    ("render-nan-checkpoint",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint_with(_nan_weights), "-o", w.tmp / "o.mp4"],
     1, "changed.pt: 1 weight tensor(s) hold NaN"),
    ("evaluate-nan-checkpoint",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint_with(_nan_weights), "--data", w.store,
                "--predictions", w.tmp / "p.csv"], 1, "changed.pt: 1 weight tensor(s) hold NaN"),
    ("explain-eval-nan-checkpoint",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint_with(_nan_weights), "--data", w.store, "--out",
                w.tmp / "ee"], 1, "hold NaN"),
    # 5. data that used to end in a traceback
    ("prep-timestamp-1e308",
     lambda w: _prep(w, _ava_rows(w, "1e308", "1e308")), 1, "bad.csv: no usable annotation rows"),
    ("prep-timestamp-1e9",
     lambda w: _prep(w, _ava_rows(w, "1e9")), 1, "not a time between 0 and 86400 s"),
    ("evaluate-corrupt-index",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", _store_damaged(w, "index")], 1,
     "index.jsonl:2: not a track record"),
    ("evaluate-truncated-npz",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", _store_damaged(w, "npz")], 1, "damaged track"),
    ("evaluate-wrong-typed-store-json",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", _store_damaged(w, "store_json")], 1,
     "store.json: settings.crop_size must be a int"),
    ("review-string-probability",
     lambda w: ["review", _review_copy(w, _string_prob), "-o", w.tmp / "page.html"], 1,
     "'prob' is not a finite number ('0.9')"),
    ("segments-string-probability",
     lambda w: ["segments", _review_copy(w, _string_prob)], 1, "r.json: track"),
    # 6. option values nobody checked
    ("train-lr-negative", lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.lr=-1"],
     2, "train.lr must be > 0"),
    ("train-epochs-zero", lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.epochs=0"],
     2, "train.epochs must be >= 1"),
    ("train-min-over-max-frames",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.min_frames=200"], 2,
     "must not exceed train.max_frames"),
    ("train-voice-swap-without-frozen-encoders",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.voice_swap=0.3"], 2,
     "train.freeze=encoders"),
    ("train-se-sparsity-without-se",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.se_sparsity=0.1", "--set",
                "model.se=false"], 2, "train.se_sparsity weighs the SE block's gates"),
    ("train-voice-swap-over-one",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.freeze=encoders", "--set",
                "train.voice_swap=1.5"], 2, "train.voice_swap must be >= 0 and <= 1"),
    ("train-live-future-negative",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.live_future=-1"], 2,
     "train.live_future must be >= 0"),
    ("train-freeze-bogus",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.freeze=all"], 2, "train.freeze"),
    ("train-device-bogus",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.device=gpu7"], 2,
     "train.device must be auto, cpu, cuda"),
    ("evaluate-bootstrap-negative",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store, "--bootstrap", "-5"], 2,
     "--bootstrap"),
    ("evaluate-durations-zero",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store, "--durations", "0"], 2, "--durations"),
    ("evaluate-device-cuda-without-cuda",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store, "--device", "cuda"], 2,
     "no CUDA GPU"),
    ("render-preset-bogus",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--preset", "bogus"], 2, "--preset"),
    ("render-crf-99", lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--crf", "99"], 2, "--crf"),
    ("render-alpha-5", lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--alpha", "5"], 2, "--alpha"),
    ("render-detect-every-zero",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--detect-every", "0"], 2, "--detect-every"),
    ("render-detect-workers-zero",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--detect-workers", "0"], 2, "--detect-workers"),
    ("render-durations-zero",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--durations", "0"], 2, "--durations"),
    ("render-se-top-zero",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--se-top", "0"], 2, "--se-top"),
    ("render-segments-on-2",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--segments-on", "2"], 2, "--segments-on"),
    ("render-device-cuda-without-cuda",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--device", "cuda", "-o", w.tmp / "o.mp4"], 2,
     "no CUDA GPU"),
    ("explain-eval-window-zero",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint, "--data", w.store, "--out", w.tmp / "e",
                "--window", "0"], 2, "--window"),
    ("explain-eval-sanity-seeds-zero",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint, "--data", w.store, "--out", w.tmp / "e",
                "--sanity-seeds", "0"], 2, "--sanity-seeds"),
    ("segments-min-gap-negative",
     lambda w: ["segments", _review_copy(w), "--segments-min-gap", "-1"], 2, "--segments-min-gap"),
    ("synth-minutes-negative", lambda w: ["synth", w.tmp / "s", "--minutes", "-1"], 2, "--minutes"),
    ("synth-size-0x0", lambda w: ["synth", w.tmp / "s", "--size", "0x0"], 2, "each side must be >= 16"),
    ("synth-fps-zero", lambda w: ["synth", w.tmp / "s", "--fps", "0"], 2, "--fps"),
    ("synth-videos-zero", lambda w: ["synth", w.tmp / "s", "--videos", "0"], 2, "--videos"),
    ("synth-workers-text", lambda w: ["synth", w.tmp / "s", "--workers", "two"], 2, "--workers"),
    ("prep-workers-zero", lambda w: [*_prep(w, w.csv), "--workers", "0"], 2, "--workers"),
    ("demo-epochs-zero", lambda w: ["demo", "--out", w.tmp / "d", "--epochs", "0"], 2, "--epochs"),
    ("talkset-val-fraction-above-one", lambda w: ["talkset", w.tmp, "--out", w.tmp / "t", "--val-fraction", "1.5"],
     2, "--val-fraction"),
    ("talkset-out-inside-the-clips", lambda w: ["talkset", w.tmp, "--out", w.tmp / "t"], 1,
     "is an input of this command"),
    ("talkset-clips-is-a-file", lambda w: ["talkset", w.video, "--out", w.tmp / "t"], 1,
     "in.mp4: is a file, not a clip folder"),
    # 7. outputs the operating system refuses
    ("render-output-under-a-file",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "-o", w.file("f") / "o.mp4"], 1, "f: output folder"),
    ("prep-store-under-a-file", lambda w: _prep(w, w.csv, w.file("f") / "store"), 1, "f is a file"),
    ("train-run-under-a-file",
     lambda w: ["train", "--data", w.store, "--out", w.file("f") / "run", *TINY_TRAIN], 1, "f is a file"),
    ("evaluate-predictions-under-a-file",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store, "--predictions",
                w.file("f") / "p.csv"], 1, "f is a file"),
    ("evaluate-predictions-is-a-folder",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.store, "--predictions", w.tmp], 1,
     "is a folder"),
    ("synth-under-a-file", lambda w: ["synth", w.file("f") / "s", "--videos", "1"], 1, "f is a file"),
    ("import-under-a-file",
     lambda w: ["import", "lightasd", w.file("w.model"), "-o", w.file("f") / "c.pt"], 1, "f is a file"),
    ("export-under-a-file",
     lambda w: ["export", "onnx", w.checkpoint, "-o", w.file("f") / "m.onnx"], 1, "f is a file"),
    ("render-onnx-runtime-with-a-pt-checkpoint",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--runtime", "onnx", "-o", w.tmp / "o.mp4"], 1,
     "not an ONNX model onnxruntime can load"),
    ("explain-eval-out-is-a-file",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint, "--data", w.store, "--out", w.file("f")], 1,
     "f is a file, not a folder"),
    ("segments-under-a-file",
     lambda w: ["segments", _review_copy(w), "-o", w.file("f") / "x.rttm"], 1, "f is a file"),
    ("review-under-a-file",
     lambda w: ["review", _review_copy(w), "-o", w.file("f") / "x.html"], 1, "f is a file"),
    ("demo-under-a-file", lambda w: ["demo", "--out", w.file("f") / "d"], 1, "f is a file"),
    # 8. smaller ones
    ("prep-empty-annotation-file", lambda w: _prep(w, w.file("empty.csv", "")), 1,
     "empty.csv: annotation file is empty"),
    ("prep-missing-annotation-file", lambda w: _prep(w, w.tmp / "gone.csv"), 1, "gone.csv: no such annotation"),
    ("prep-folder-without-csvs", lambda w: _prep(w, w.store_copy()), 1, "store: folder holds no annotation .csv"),
    ("prep-videos-is-a-file",
     lambda w: ["prep", "--annotations", w.csv, "--videos", w.video, "--out", w.tmp / "s"], 1,
     "in.mp4: is a file, not a video folder"),
    ("prep-no-video-files", lambda w: ["prep", "--annotations", w.csv, "--videos", w.tmp / "store_out",
                                       "--out", w.tmp / "s"], 1, "no such video folder"),
    ("render-video-is-a-folder",
     lambda w: ["render", w.store_copy(), "--checkpoint", w.checkpoint, "-o", w.tmp / "o.mp4"], 1,
     "store: is a folder, not a video"),
    ("render-checkpoint-is-a-folder",
     lambda w: ["render", w.video, "--checkpoint", w.store_copy(), "-o", w.tmp / "o.mp4"], 1,
     "store: is a folder, not a checkpoint"),
    ("evaluate-store-is-a-file",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint, "--data", w.video], 1, "is a file, not a track store"),
    # 9. a checkpoint whose config cannot be used: one line naming the file (round two, class 5)
    ("render-checkpoint-without-config",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint_with(_no_config), "-o", w.tmp / "o.mp4"], 1,
     "changed.pt: holds no model config (its 'config' is NoneType)"),
    ("render-checkpoint-string-config",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint_with(_string_config), "-o", w.tmp / "o.mp4"], 1,
     "changed.pt: holds no model config (its 'config' is str)"),
    ("render-checkpoint-embed-dim-1e12",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint_with(_huge_embedding), "-o", w.tmp / "o.mp4"], 1,
     "changed.pt: its config cannot be used: model.embed_dim must be >= 1 and <= 4096"),
    ("render-checkpoint-unknown-config-key",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint_with(_unknown_key), "-o", w.tmp / "o.mp4"], 1,
     "changed.pt: its config cannot be used: unknown keys in 'model': ['colour']"),
    ("evaluate-checkpoint-without-config",
     lambda w: ["evaluate", "--checkpoint", w.checkpoint_with(_no_config), "--data", w.store], 1,
     "changed.pt: holds no model config"),
    ("explain-eval-checkpoint-unknown-config-key",
     lambda w: ["explain-eval", "--checkpoint", w.checkpoint_with(_unknown_key), "--data", w.store, "--out",
                w.tmp / "ee"], 1, "changed.pt: its config cannot be used"),
    ("train-init-checkpoint-unknown-config-key",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--init", w.checkpoint_with(_unknown_key),
                *TINY_TRAIN], 1, "changed.pt: its config cannot be used: unknown keys"),
    ("prep-checkpoint-string-config",
     lambda w: [*_prep(w, w.csv), "--checkpoint", w.checkpoint_with(_string_config)], 1,
     "changed.pt: holds no model config"),
    ("export-checkpoint-embed-dim-1e12",
     lambda w: ["export", "onnx", w.checkpoint_with(_huge_embedding), "-o", w.tmp / "m.onnx"], 1,
     "changed.pt: its config cannot be used: model.embed_dim"),
    ("live-checkpoint-without-config",
     lambda w: ["live", w.video, "--checkpoint", w.checkpoint_with(_no_config), "--jsonl", w.tmp / "l.jsonl"], 1,
     "changed.pt: holds no model config"),
    # 10. settings files and options that used to end in a traceback or win silently
    ("train-yaml-section-given-twice",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--config",
                w.file("twice.yaml", "train:\n  lr: 0.001\ntrain:\n  lr: 5\n")], 2,
     "twice.yaml: not a readable YAML config (line 3, column 1: 'train' is given twice (lines 1 and 3)"),
    ("train-yaml-key-given-twice",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--config",
                w.file("twice.yaml", "train:\n  lr: 0.001\n  epochs: 2\n  lr: 5\n")], 2,
     "'lr' is given twice (lines 2 and 4)"),
    ("train-yaml-top-level-list",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--config", w.file("list.yaml", "- 1\n- 2\n")],
     2, "list.yaml: a config maps sections (model:, train:) to settings, not a list"),
    ("train-yaml-section-is-a-list",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--config",
                w.file("list.yaml", "train: [1, 2]\n")], 2, "list.yaml: section 'train' must map settings"),
    ("train-set-value-not-yaml",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "train.lr=["], 2,
     "--set train.lr=[: the value is not valid YAML"),
    ("train-embed-dim-1e12",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "model.embed_dim=1000000000000"], 2,
     "model.embed_dim must be >= 1 and <= 4096"),
    ("train-se-reduction-1e6",
     lambda w: ["train", "--data", w.store, "--out", w.tmp / "r", "--set", "model.se_reduction=1000000"], 2,
     "model.se_reduction must be >= 1 and <= 256"),
    ("render-onnx-runtime-with-gradcam",
     lambda w: ["render", w.video, "--checkpoint", w.file("m.onnx"), "--runtime", "onnx", "--explainer",
                "gradcam", "-o", w.tmp / "o.mp4"], 2, "--explainer gradcam needs gradients, which --runtime onnx"),
    ("live-onnx-runtime-with-gradcampp",
     lambda w: ["live", w.video, "--checkpoint", w.file("m.onnx"), "--runtime", "onnx", "--explainer",
                "gradcampp"], 2, "--explainer gradcampp needs gradients"),
    ("render-onnx-runtime-with-a-shipped-name",
     lambda w: ["render", w.video, "--checkpoint", "lrasd-talkset", "--runtime", "onnx", "-o", w.tmp / "o.mp4"],
     1, "lrasd-talkset: a shipped model, not an .onnx file; export it first: asd-se export onnx lrasd-talkset"),
    ("live-onnx-runtime-with-a-shipped-name",
     lambda w: ["live", w.video, "--checkpoint", "lightasd-ava", "--runtime", "onnx", "--jsonl",
                w.tmp / "l.jsonl"], 1, "lightasd-ava: a shipped model, not an .onnx file; export it first"),
    # 11. inputs that exist but are no regular file: said so, never "no such file"
    ("render-video-is-a-fifo",
     lambda w: ["render", _fifo(w), "--checkpoint", w.checkpoint, "-o", w.tmp / "o.mp4"], 1,
     "in.fifo: is a FIFO (named pipe), not a regular file"),
    ("render-video-is-dev-zero",
     lambda w: ["render", "/dev/zero", "--checkpoint", w.checkpoint, "-o", w.tmp / "o.mp4"], 1,
     "/dev/zero: is a device, not a regular file"),
    ("render-checkpoint-is-a-fifo",
     lambda w: ["render", w.video, "--checkpoint", _fifo(w), "-o", w.tmp / "o.mp4"], 1,
     "in.fifo: is a FIFO (named pipe), not a regular checkpoint"),
    ("evaluate-checkpoint-is-dev-zero",
     lambda w: ["evaluate", "--checkpoint", "/dev/zero", "--data", w.store], 1, "/dev/zero: is a device"),
    ("live-source-is-a-fifo",
     lambda w: ["live", _fifo(w), "--checkpoint", w.checkpoint, "--jsonl", w.tmp / "l.jsonl"], 1,
     "in.fifo: is a FIFO (named pipe), not a regular file (asd-se reads it more than once"),
    # 12. a stream asked for that the file does not have
    ("render-audio-stream-out-of-range",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--audio-stream", "3", "-o", w.tmp / "o.mp4"], 1,
     "in.mp4: --audio-stream 3: the file has 1 audio stream(s), 0 to 0"),
    ("live-audio-stream-out-of-range",
     lambda w: ["live", w.video, "--checkpoint", w.checkpoint, "--audio-stream", "2", "--jsonl",
                w.tmp / "l.jsonl"], 1, "in.mp4: --audio-stream 2: the file has 1 audio stream(s)"),
    ("render-audio-stream-negative",
     lambda w: ["render", w.video, "--checkpoint", w.checkpoint, "--audio-stream", "-1"], 2, "--audio-stream"),
]


@pytest.mark.parametrize("case, build, code, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(case, build, code, message, world, capsys):
    argv = build(world)
    watched = [world.tmp, world.store, world.checkpoint, world.render_json.parent]
    before = snapshot(watched)
    assert run(argv) == code
    error = capsys.readouterr().err
    assert message in error, error
    assert "Traceback" not in error
    if code == 1:  # the project's one line and its hint (argparse's exit 2 adds its usage lines)
        assert len([line for line in error.splitlines() if line.strip()]) <= 2, "one line: " + error
    assert snapshot(watched) == before, "an input changed, or a partial output was left"


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60


def test_a_bom_is_not_part_of_row_one(world):
    rows, problems = read_csv(_bom(world))
    assert problems == [] and rows[0].line == 1 and rows[0].video_id == read_csv(world.csv)[0][0].video_id


def test_ctrl_c_is_one_line_and_exit_130(world, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("data_prep.synth.dataset.make_dataset", interrupted)
    assert run(["synth", world.tmp / "s", "--videos", "1"]) == 130
    assert capsys.readouterr().err.splitlines() == ["asd-se synth: interrupted; nothing partial was left (rerun to "
                                                    "finish)"]


def test_train_force_replaces_the_earlier_run_and_keeps_none_of_it(world):
    run_dir = world.run_folder()
    old_best = (run_dir / "best.pt").read_bytes()
    assert run(["train", "--data", world.store, "--out", run_dir, "--force", *TINY_TRAIN, "--set",
                "train.bootstrap=0"]) == 0
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 0
    assert (run_dir / "last.pt").exists() and (run_dir / "best.pt").read_bytes() != old_best


def _merge_parts(world, tmp_path) -> tuple[Path, Path]:
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(world.store, first)
    shutil.copytree(world.store, second)
    return first, second


def test_merge_of_incompatible_stores_writes_nothing(world, tmp_path, capsys):
    first, second = _merge_parts(world, tmp_path)
    header = json.loads((second / "store.json").read_text())
    header["settings"]["crop"] = "lightasd"
    (second / "store.json").write_text(json.dumps(header))
    assert run(["merge", "--out", tmp_path / "merged", first, second]) == 1
    assert "differ" in capsys.readouterr().err and not (tmp_path / "merged").exists()


def test_the_same_video_in_two_merged_stores_is_refused(world, tmp_path, capsys):
    first, second = _merge_parts(world, tmp_path)
    manifest = sorted((second / "videos").glob("*.json"))[0]
    data = json.loads(manifest.read_text())
    data["tracks"] = data["tracks"][:1]
    manifest.write_text(json.dumps(data))
    assert run(["merge", "--out", tmp_path / "merged", first, second]) == 1
    assert f"{manifest}: video" in capsys.readouterr().err and not (tmp_path / "merged").exists()


def test_a_staging_folder_left_by_a_killed_render_is_removed_by_the_rerun(world):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = world.tmp / f"{STAGING_PREFIX}{dead.stdout.strip()}-abc"
    (stale / "sub").mkdir(parents=True)
    render_video(world.video, world.checkpoint, world.tmp / "o.mp4",
                 settings=RenderSettings(preset="ultrafast", detect_every=10, review=False), progress=False)
    assert not stale.exists()


def _with_file_size_limit(argv: list, limit: int = 60_000) -> subprocess.CompletedProcess:
    """Run the CLI where no file may grow past ``limit`` bytes: writes past it fail with EFBIG, as on a full
    disk (works as root and in CI, where permissions do not)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
        from asd_se.cli import main
        sys.exit(main({[str(a) for a in argv]!r}))
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", ["synth", "import"])
def test_a_full_disk_leaves_one_line_and_nothing_partial(world, command, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if command == "synth":
        argv, named = ["synth", out_dir / "data", "--videos", "1", "--minutes", "0.05", "--workers", "1"], out_dir
    else:
        weights = SHIPPED["lightasd-talkset"].path
        argv, named = ["import", "lightasd", weights, "-o", out_dir / "c.pt"], out_dir / "c.pt"
    before = snapshot([world.tmp])
    done = _with_file_size_limit(argv)
    assert done.returncode == 1, done.stderr
    assert "cannot be written" in done.stderr and str(named) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    leftovers = [p for p in out_dir.rglob("*") if p.is_file()]
    assert leftovers == [], "nothing partial may be left"
    assert snapshot([world.tmp]) == before


def test_a_full_disk_while_render_writes_its_outputs_leaves_none_of_them(world, tmp_path, monkeypatch, capsys):
    import errno

    from asd_se.render import pipeline

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "plot_timeline", full)  # the third of the six outputs
    out = tmp_path / "o.mp4"
    assert run(["render", world.video, "--checkpoint", world.checkpoint, "-o", out, "--preset", "ultrafast",
                "--detect-every", "10"]) == 1
    assert f"{tmp_path}: cannot be written (No space left on device)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [world.tmp.parent / "w"] or list(tmp_path.iterdir()) == [world.tmp]


def test_a_model_whose_outputs_are_not_finite_is_stopped_by_the_engine(checkpoint):
    config = load_config(None)
    model = ActiveSpeakerModel(config.model)
    model.source = "huge.pt"
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(1e30)
    faces = torch.full((1, 10, 112, 112), 128, dtype=torch.uint8)
    with pytest.raises(NonFiniteOutput, match="huge.pt: the model's scores are NaN or infinite"):
        score_clip(model, faces, torch.zeros(1, 6400))


def test_an_untrained_se_block_is_said_and_its_channels_are_not_written(world, capsys):
    identity = world.checkpoint_with(lambda p: p.update(
        model=ActiveSpeakerModel(load_config(None, ["model.se_identity=true"]).model).state_dict(),
        config=load_config(None, ["model.se_identity=true"]).to_dict()), "identity.pt")
    assert run(["render", world.video, "--checkpoint", identity, "-o", world.tmp / "se_contrast.mp4",
                "--explainer", "se_contrast"]) == 1
    assert "SE block is untrained" in capsys.readouterr().err
    result = render_video(world.video, identity, world.tmp / "o.mp4",
                          settings=RenderSettings(preset="ultrafast", detect_every=10, review=False), progress=False)
    assert any("SE block is untrained" in note for note in result.notes)
    document = read_render(world.tmp / "o.json")
    records = [r for t in document.tracks for r in t["frames"]]
    assert records and not any("se_channels" in r for r in records)


def test_the_render_document_keeps_full_precision_and_the_crops_box(render_json):
    document = read_render(render_json)
    records = [r for t in document.tracks for r in t["frames"]]
    assert all("score" in r for r in records)
    assert any(len(repr(r["prob"]).split(".")[-1]) > 4 for r in records), "probabilities are not rounded to 4"
    probs, scores = (np.array([r[k] for r in records], np.float64) for k in ("prob", "score"))
    assert np.allclose(probs, 1 / (1 + np.exp(-scores)), atol=1e-6), "the score is the logit the probability is of"


def test_the_map_sits_on_the_box_the_crop_was_cut_around_and_no_map_is_said():
    from asd_se.core.crop import crop_region, smooth_crop_boxes
    from asd_se.render.report import frame_records
    from asd_se.render.scan import SourceScan
    from asd_se.render.scores import TrackResult
    from asd_se.video.explainers import map_peaks
    from asd_se.video.tracks import RenderTrack

    count = 30
    jitter = np.random.default_rng(0).normal(0, 6, (count, 4))
    boxes = np.array([100, 80, 160, 150], np.float64) + jitter
    times = np.arange(count) / 25
    track = RenderTrack(0, "face0", np.arange(count), boxes, times, boxes, np.arange(count))
    maps = np.zeros((count, 7, 7), np.float16)
    maps[1:, 3, 4] = 1.0  # frame 0: an all-zero map (Grad-CAM's, where nothing speaks for speaking)
    result = TrackResult(np.full(count, 0.5, np.float32), np.zeros(count, np.float32), maps,
                         map_peaks(maps, 112), [[] for _ in range(count)])
    source = SourceScan(Path("v.mp4"), 320, 240, 25.0, None, times, np.zeros(0), None, 0)
    records = frame_records(track, result, source, crop="lightasd")
    smoothed = smooth_crop_boxes(boxes, "lightasd")
    assert np.abs(smoothed - boxes).max() > 3, "the smoothing must matter for this test to mean anything"
    for record, box, cut in zip(records, boxes, smoothed):
        region = crop_region(tuple(cut), "lightasd")
        assert record["box"] == [round(float(v), 1) for v in box]  # the face's own box on the frame
        assert record["region"] == [round(region.x0, 1), round(region.y0, 1), round(region.side, 1)]
    assert records[0]["heatmap_peak"] is None and records[1]["heatmap_peak"] is not None


# --- round two: live's start and end, outputs opened before the work can start (classes 1 and 2) ----------------

def _live(source: str, checkpoint: Path, *options, stdin=None, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "asd_se", "live", source, "--checkpoint", str(checkpoint),
                             *map(str, options)], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=True)


def _ended_within(process: subprocess.Popen, seconds: float) -> tuple[str, float]:
    """Wait for ``process`` (killed if it hangs past 120 s); its stderr and the seconds it took past now."""
    started = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.1f} s to end ({stderr})"
    return stderr, took


def _wait_for(path: Path, lines: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path}: fewer than {lines} lines ({process.poll()=})")


def test_a_file_piped_on_stdin_ends_with_exit_0_and_complete_json_lines(world):
    stream = remuxed(world.video, world.tmp / "fast.mp4", {"movflags": "faststart"})  # its index first
    with open(stream, "rb") as stdin:
        process = _live("-", world.checkpoint, "--lookahead", "0", stdin=stdin)
        out, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in out.splitlines()]
    check_stream(lines, decoded_frames(stream))  # every frame decided or said dropped (a pipe is not paced)
    assert lines[-1]["reason"] == "end of stream"


def test_an_mp4_indexed_at_its_end_on_stdin_is_read_whole_then_every_frame_decided(world):
    jsonl = world.tmp / "l.jsonl"
    with open(world.video, "rb") as stdin:  # as encoders write MP4s: no frame decodable before the end
        process = _live("-", world.checkpoint, "--jsonl", jsonl, stdin=stdin)
        stderr, _ = _ended_within(process, 120)
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
    lines = read_lines(jsonl)
    assert len(check_stream(lines)) == decoded_frames(world.video)  # all of them: nothing was arriving late
    assert any("an MP4 whose index comes after its media: read whole" in note for note in lines[0]["notes"])


def test_a_stream_that_ends_before_its_first_picture_is_an_error_naming_it(world):
    cut = world.tmp / "cut.ts"
    cut.write_bytes(to_ts(world.video, world.tmp / "whole.ts").read_bytes()[:188 * 3])  # its tables, no picture
    jsonl = world.tmp / "l.jsonl"
    with open(cut, "rb") as stdin:
        process = _live("-", world.checkpoint, "--jsonl", jsonl, stdin=stdin)
        stderr, _ = _ended_within(process, 120)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.splitlines()[-2].startswith("asd-se live: error: -: "), stderr
    if jsonl.exists():  # opened: its lines say how it ended
        lines = read_lines(jsonl)
        assert check_stream(lines) == [] and lines[-1]["reason"] == "error"


@pytest.mark.parametrize("name,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_the_warm_up_ends_the_run_at_once_with_its_outputs_closed(name, code, world):
    jsonl, out = world.tmp / "l.jsonl", world.tmp / "l.mp4"
    process = _live(str(world.video), world.checkpoint, "--context", "60", "--jsonl", jsonl, "-o", out)
    _wait_for(jsonl, 1, process)  # the start line: the outputs are open, the warm-up (60 s of context) begins
    process.send_signal(getattr(signal, name))
    stderr, _ = _ended_within(process, 10)  # it took the whole warm-up (~25 s here), then a traceback
    assert process.returncode == code and "Traceback" not in stderr, stderr
    lines = read_lines(jsonl)
    assert check_stream(lines) == [] and lines[-1]["reason"] == name and lines[-1]["frames"] == 0
    assert not out.exists()  # no frame was decided: no MP4 (an earlier one would have been left as it was)


@pytest.mark.parametrize("name,code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_while_the_source_has_sent_nothing_ends_at_once_and_writes_nothing(name, code, world):
    jsonl = world.file("l.jsonl", '{"an earlier run": 1}\n')
    before = jsonl.read_bytes()
    read, write = os.pipe()  # held open by its writer, silent: the first frames never arrive
    try:
        process = _live("-", world.checkpoint, "--jsonl", jsonl, "--stall", "300", stdin=read)
        time.sleep(4)  # the model loads; the source is being opened
        process.send_signal(getattr(signal, name))
        stderr, _ = _ended_within(process, 10)  # SIGTERM waited until the writer closed the pipe
    finally:
        os.close(read), os.close(write)
    assert process.returncode == code and "nothing partial was left" in stderr, stderr
    assert jsonl.read_bytes() == before  # the earlier run's lines were never opened for writing


@pytest.mark.parametrize("existing", [True, False])
def test_a_port_in_use_refuses_the_run_before_any_output_is_opened(existing, world, capsys):
    jsonl, out = world.tmp / "l.jsonl", world.tmp / "l.mp4"
    if existing:
        jsonl.write_text('{"frame": 0}\n' * 100)  # an earlier run's decisions
    before = snapshot([world.tmp])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert run(["live", world.video, "--checkpoint", world.checkpoint, "--serve", taken.getsockname()[1],
                    "--jsonl", jsonl, "-o", out]) == 1
    assert "is in use; choose another --serve port" in capsys.readouterr().err
    assert snapshot([world.tmp]) == before  # the earlier file whole, no new one, no MP4


def test_json_lines_into_a_reader_that_went_away_end_with_one_line_naming_standard_output(world):
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    process = _live(str(world.video), world.checkpoint, stdout=reader.stdin)
    reader.stdin.close()
    stderr, _ = _ended_within(process, 120)
    reader.wait()
    assert process.returncode == 1, stderr
    assert stderr.strip().splitlines()[-2:] == [
        "asd-se live: error: standard output: its reader closed it (broken pipe); nothing more was written",
        "  (rerun with -v for the traceback)"], stderr


@pytest.mark.parametrize("argv,named", [
    (["live", "{video}", "--checkpoint", "{checkpoint}", "--jsonl", "/dev/full"], "/dev/full: cannot be written"),
    (["live", "{video}", "--checkpoint", "{checkpoint}"], "standard output: cannot be written"),
    (["models"], "standard output: cannot be written (No space left on device)"),
    (["segments", "{json}"], "standard output: cannot be written"),
])
def test_a_full_device_as_output_is_named(argv, named, world):
    argv = [a.format(video=world.video, checkpoint=world.checkpoint, json=world.render_json) for a in argv]
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "asd_se", *argv], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=300)
    assert done.returncode == 1 and named in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("command", [["models"], ["segments", "{json}"]])
def test_a_closed_standard_output_is_said(command, world):
    argv = [a.format(json=world.render_json) for a in command]
    done = subprocess.run([sys.executable, "-m", "asd_se", *argv], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=lambda: os.close(1))  # `asd-se models >&-`
    assert done.returncode == 1 and "standard output: is closed" in done.stderr, done.stderr


def test_a_local_file_named_like_a_shipped_model_is_said_to_be_used(world, monkeypatch, caplog):
    monkeypatch.chdir(world.tmp)
    shutil.copy(world.checkpoint, world.tmp / "lrasd-talkset")
    assert load_checkpoint("lrasd-talkset")["config"]["model"]["variant"] == "light"  # the file, not the shipped
    assert "lrasd-talkset: a file of this name is here, so it is used, not the shipped model" in caplog.text


# --- round two: streams and clocks that were silently the wrong ones (class 4) ---------------------------------

def _probabilities(out: Path) -> np.ndarray:
    document = read_render(out.with_suffix(".json"))
    return np.array([record["prob"] for track in document.tracks for record in track["frames"]])


def _render(video: Path, checkpoint: Path, out: Path, **settings) -> tuple[np.ndarray, list[str]]:
    result = render_video(video, checkpoint, out, settings=RenderSettings(preset="ultrafast", review=False,
                                                                          **settings), progress=False)
    return _probabilities(out), result.notes


@pytest.fixture(scope="module")
def plain(synth_root, checkpoint, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """The synthetic val video, and the probabilities of its render as Matroska with its own sound (what the
    files below are made from, each made from the same video in the same way)."""
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    folder = tmp_path_factory.mktemp("streams")
    source = synth_root / "videos" / f"{rows[0].video_id}.mp4"
    probabilities, notes = _render(restamped(source, folder / "plain.mkv"), checkpoint, folder / "plain.mp4")
    assert len(probabilities) > 100 and not notes
    return source, probabilities


def test_the_audio_stream_with_sound_is_scored_and_the_choice_said(plain, checkpoint, tmp_path):
    video = restamped(plain[0], tmp_path / "two.mkv", ("silent", "own"))
    probabilities, notes = _render(video, checkpoint, tmp_path / "two.mp4")
    assert np.allclose(probabilities, plain[1], atol=1e-5)  # stream 1: the sound of the one-stream file
    assert len(notes) == 1 and re.fullmatch(
        rf"{video}: 2 audio streams \(0: -inf dBFS, 1: -\d+ dBFS over the first minute\); scored against stream 1 "
        r"\(the first with sound\); --audio-stream N chooses another", notes[0]), notes
    silent, notes = _render(video, checkpoint, tmp_path / "zero.mp4", audio_stream=0)  # as asked, said nothing
    assert notes == [] and not np.allclose(silent, plain[1], atol=1e-3)
    assert probe(tmp_path / "two.mp4").has_audio


def test_live_listens_to_the_stream_with_sound_too(plain, checkpoint, tmp_path):
    video = restamped(plain[0], tmp_path / "two.mkv", ("silent", "own"))
    assert run(["live", video, "--checkpoint", checkpoint, "--jsonl", tmp_path / "l.jsonl"]) == 0
    start = read_lines(tmp_path / "l.jsonl")[0]
    assert any("scored against stream 1" in note for note in start["notes"])


def test_a_video_clock_far_from_the_audios_is_aligned_and_said_once(plain, checkpoint, tmp_path):
    video = restamped(plain[0], tmp_path / "late.mkv", video_start=1e9)
    probabilities, notes = _render(video, checkpoint, tmp_path / "late.mp4")
    assert np.allclose(probabilities, plain[1], atol=1e-5)  # scored against its sound, not silence
    assert notes == [f"{video}: the video starts at 1000000000.00 s, 1000000000.00 s after the file's start: its "
                     "own clock, timed from its first frame"]
    assert probe(tmp_path / "late.mp4").duration < probe(plain[0]).duration + 1  # not a 31-year MP4


def test_files_joined_end_to_end_and_a_size_change_are_said_once_each(world, checkpoint, tmp_path):
    first = to_ts(world.video, tmp_path / "a.ts", seconds=3.0)
    second = to_ts(world.video, tmp_path / "b.ts", size=(160, 120), seconds=3.0)
    video = joined([first, second], tmp_path / "joined.ts")
    result = render_video(video, checkpoint, tmp_path / "j.mp4", settings=RenderSettings(
        preset="ultrafast", review=False), progress=False)
    said = sorted(note.split(": ", 1)[1] for note in result.notes if note.startswith(f"{video}: "))
    assert len(said) == 3 and re.match(r"the audio timestamps jump from 3\.\d\d s to 0\.00 s", said[0]), said
    assert re.match(r"the picture changes size at 3\.\d\d s \(\d+x\d+ -> 160x120\); every frame is scaled",
                    said[1]), said
    assert re.match(r"the video timestamps jump from 3\.\d\d s to 0\.00 s", said[2]), said
    times = [record["time"] for track in read_render(tmp_path / "j.json").tracks for record in track["frames"]]
    assert times and np.all(np.diff(sorted(set(times))) > 0) and max(times) > 3.5  # the second part after the first
    written = probe(tmp_path / "j.mp4")
    assert (written.width, written.height) == (probe(first).width, probe(first).height)
    assert written.duration == pytest.approx(probe(first).duration + probe(second).duration, abs=0.2)
