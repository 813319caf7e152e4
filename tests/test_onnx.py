"""``asd-se export onnx`` and ``--runtime onnx``: parity with torch at any clip length, the scoring engine and render
through onnxruntime, and what bad input gets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asd_se.cli import main
from asd_se.explain import build_explainer
from asd_se.models import build_model
from asd_se.models.config import Config
from asd_se.models.onnx_model import (
    PARITY_TOLERANCE,
    OnnxAsdModel,
    export_onnx,
    random_clip,
)
from asd_se.models.zoo import DEFAULT_MODEL
from asd_se.scoring.engine import score_clip


@pytest.mark.parametrize("model_settings", [
    {"variant": "light"},
    {"variant": "lightasd", "crop": "lightasd", "frontend": "lightasd", "map_size": 14, "se": True},
    {"variant": "lrasd", "crop": "lightasd", "frontend": "lightasd", "map_size": 14, "se": True,
     "se_squeeze": "frame"},
])
def test_every_variant_exports_with_parity_at_two_lengths(tmp_path, model_settings):
    torch.manual_seed(0)
    config = Config.from_dict({"model": model_settings})
    model = build_model(config.model).eval()
    parity = export_onnx(model, config, "test", tmp_path / "m.onnx")
    assert len(parity.max_difference) == 2 and parity.worst < PARITY_TOLERANCE
    assert not model.training  # the export leaves the model as it found it
    loaded = OnnxAsdModel(tmp_path / "m.onnx")
    assert loaded.config == config and (loaded.se is not None) == config.model.se


def test_the_scoring_engine_gives_the_same_scores_and_se_maps_through_onnxruntime(tmp_path):
    from asd_se.models.loading import load_model

    model, config = load_model(DEFAULT_MODEL, torch.device("cpu"))
    export_onnx(model, config, DEFAULT_MODEL, tmp_path / "m.onnx")
    exported = OnnxAsdModel(tmp_path / "m.onnx")
    assert exported.se is not None and not exported.se.untrained
    faces, audio = random_clip(model, 80, seed=3)
    se = build_explainer("se")
    ours, theirs = score_clip(model, faces, audio, [se]), score_clip(exported, faces, audio, [se])
    for head in ("probs", "audio_probs", "visual_probs"):
        assert np.abs(getattr(ours, head).numpy() - getattr(theirs, head).numpy()).max() < PARITY_TOLERANCE
    assert torch.allclose(ours.maps["se"], theirs.maps["se"], atol=1e-4) and ours.channels == theirs.channels
    with pytest.raises(Exception, match="needs gradients"):
        score_clip(exported, faces, audio, [build_explainer("gradcam")])


def test_export_and_render_with_onnxruntime_from_the_command_line(tmp_path):
    from real_media import talking_clip

    clip = talking_clip(tmp_path / "talk.mp4", seconds=2)
    onnx_file = tmp_path / "model.onnx"
    assert main(["export", "onnx", DEFAULT_MODEL, "-o", str(onnx_file)]) == 0
    outputs = {}
    for runtime, checkpoint in (("torch", DEFAULT_MODEL), ("onnx", str(onnx_file))):
        out = tmp_path / f"{runtime}.mp4"
        assert main(["render", str(clip), "--checkpoint", checkpoint, "-o", str(out), "--runtime", runtime,
                     "--preset", "ultrafast", "--no-review"]) == 0
        outputs[runtime] = json.loads(out.with_suffix(".json").read_text())["tracks"][0]["frames"]
    assert len(outputs["torch"]) == len(outputs["onnx"]) > 40
    for ours, theirs in zip(outputs["torch"], outputs["onnx"]):
        assert abs(ours["prob"] - theirs["prob"]) < PARITY_TOLERANCE
        assert ours["heatmap_peak"] == pytest.approx(theirs["heatmap_peak"], abs=0.02)


def test_bad_exports_and_runtimes_are_refused(tmp_path, capsys, checkpoint):
    not_a_checkpoint = tmp_path / "notes.txt"
    not_a_checkpoint.write_text("hello")
    out = tmp_path / "m.onnx"
    assert main(["export", "onnx", str(not_a_checkpoint), "-o", str(out)]) == 1
    assert str(not_a_checkpoint) in capsys.readouterr().err and not out.exists()
    assert main(["export", "onnx", str(checkpoint), "-o", str(checkpoint)]) == 1  # never over its input
    assert "is an input of this command" in capsys.readouterr().err
    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    from real_media import talking_clip
    clip = talking_clip(video.with_name("talk.mp4"), seconds=1)
    assert main(["render", str(clip), "--checkpoint", str(checkpoint), "--runtime", "onnx",
                 "-o", str(tmp_path / "a.mp4")]) == 1
    assert "not an ONNX model onnxruntime can load" in capsys.readouterr().err
    assert main(["export", "onnx", str(checkpoint), "-o", str(out)]) == 0
    assert main(["render", str(clip), "--checkpoint", str(out), "--runtime", "onnx", "--explainer", "gradcam",
                 "-o", str(tmp_path / "b.mp4")]) == 2  # a conflict of arguments
    assert "needs gradients, which --runtime onnx (onnxruntime) does not give" in capsys.readouterr().err
    assert not list(tmp_path.glob("[ab].*"))
