"""The hostile-input suite: every command given what a careless user or script gives it. Each case asserts the
exit code, that the message names the file (or option), that no partial output is left, and that every input's
bytes are unchanged (hashed before and after). The rules (README, "What asd-se promises"): no command writes over
a path it reads; outputs appear all together or not at all; bad arguments exit 2, unusable input 1, Ctrl-C 130."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from asd_se.checkpoint import load_checkpoint, save_checkpoint
from asd_se.cli import main
from asd_se.config import load_config
from asd_se.core.annotations import read_csv
from asd_se.core.fsio import STAGING_PREFIX
from asd_se.models import ActiveSpeakerModel
from asd_se.render.pipeline import RenderSettings, render_video
from asd_se.review.document import read_render
from asd_se.scoring import NonFiniteOutput, score_clip
from asd_se.zoo import SHIPPED

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
    from asd_se.render.scores import TrackResult, map_peaks
    from asd_se.render.tracks import RenderTrack

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
