"""``asd-se demo`` end to end on a tiny synthetic set: every stage runs and the render lands where it says."""

from __future__ import annotations

import json

from conftest import TINY

from asd_se.demo import run_demo
from asd_se.models.loading import load_checkpoint
from asd_se.models.zoo import DEFAULT_MODEL


def test_demo_runs_every_stage_and_points_at_the_render(tmp_path):
    lines = run_demo(tmp_path / "demo", workers=2, epochs=1, synth=TINY,
                     overrides=("train.frame_budget=100", "train.max_frames=25", "train.min_frames=10"))
    text = "\n".join(lines)
    mp4 = next(tmp_path.glob("demo/render/*.asd.mp4"))
    assert str(mp4) in text and "mAP (audio-visual)" in text
    assert lines[-1].endswith(str(mp4.with_suffix(".html"))) and mp4.with_suffix(".html").exists()
    report = json.loads(mp4.with_suffix(".json").read_text())
    assert report["tracks"] and report["frames"] > 100
    assert (tmp_path / "demo" / "run" / "val_predictions.csv").exists()
    real = tmp_path / "demo" / "real" / "carphone.asd.mp4"  # first: a real face with the shipped default model
    assert lines[0].startswith("real clip") and (str(real) in lines[0]) == real.exists()
    if real.exists():
        assert json.loads(real.with_suffix(".json").read_text())["checkpoint"] == DEFAULT_MODEL
    # the figure printed is that of the model rendered: best.pt, whose own validation recorded the same mAP
    best = load_checkpoint(tmp_path / "demo" / "run" / "best.pt")
    assert f"best.pt (epoch {best['epoch'] + 1}" in text
    assert f"mAP (audio-visual): {100 * best['metrics']['val_map']:.2f}" in text
