"""One source of settings: every shipped YAML loads and builds; CLI options are the dataclasses' own fields;
bad values are ConfigErrors naming the key; the CLI prints the project's errors in one line and lets bugs
keep their traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asd_se.cli import build_parser, main
from asd_se.core.errors import ConfigError
from asd_se.core.options import settings_from
from asd_se.explain import ChannelSelection
from asd_se.explain_eval.evaluation import ExplainEvalConfig
from asd_se.models import ActiveSpeakerModel
from asd_se.models.config import load_config
from asd_se.render.pipeline import RenderSettings

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_builds_and_runs(path):
    config = load_config(path)
    model = ActiveSpeakerModel(config.model).eval()
    with torch.no_grad():
        output = model(torch.randint(0, 256, (1, 4, 112, 112), dtype=torch.uint8), torch.zeros(1, 4 * 640),
                       explain=True)
    assert output.logits.shape == (1, 4)
    assert (output.se_weights is not None) == config.model.se


@pytest.mark.parametrize("assignment, message", [
    ("model.variant=huge", "model.variant must be one of 'light', 'resnet18', 'lightasd'"),
    ("model.fusion=concat", "model.fusion must be one of"), ("model.backend=lstm", "model.backend must be one of"),
    ("model.se_squeeze=pixel", "model.se_squeeze must be one of"), ("train.epochs=ten", "train.epochs must be a int"),
    ("train.nonsense=1", "unknown keys in 'train'")])
def test_bad_settings_are_config_errors_naming_the_key(assignment, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [assignment])


def test_a_bad_yaml_file_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not a readable YAML config"):
        load_config(path)


def test_numbers_in_exponent_form_are_numbers():
    assert load_config(None, ["train.lr=2e-3"]).train.lr == pytest.approx(0.002)


def test_render_and_explain_eval_options_are_their_dataclasses():
    parser = build_parser()
    render = parser.parse_args(["render", "v.mp4", "--checkpoint", "c.pt"])
    assert settings_from(RenderSettings, render) == RenderSettings()
    changed = parser.parse_args(["render", "v.mp4", "--checkpoint", "c.pt", "--se-select", "rank", "--se-top",
                                 "0.2", "--panel", "--explainer", "gradcam", "--detect-every", "3"])
    assert settings_from(RenderSettings, changed) == RenderSettings(
        detect_every=3, explainer="gradcam", panel=True, se=ChannelSelection("rank", 0.2))
    explain = parser.parse_args(["explain-eval", "--checkpoint", "c", "--data", "d", "--out", "o"])
    assert settings_from(ExplainEvalConfig, explain) == ExplainEvalConfig()
    picked = parser.parse_args(["explain-eval", "--checkpoint", "c", "--data", "d", "--out", "o", "--methods", "se",
                                "eigencam", "--se-floor", "0"])
    assert settings_from(ExplainEvalConfig, picked) == ExplainEvalConfig(methods=("se", "eigencam"),
                                                                         se=ChannelSelection(floor=0.0))


def test_project_errors_are_one_line_with_a_hint_and_their_traceback_with_v(store_root, tmp_path, capsys):
    args = ["train", "--data", str(store_root), "--out", str(tmp_path / "run"), "--set", "model.variant=huge"]
    assert main(args) == 2  # a bad setting is a bad argument
    err = capsys.readouterr().err
    assert err.splitlines() == ["asd-se train: error: model.variant must be one of 'light', 'resnet18', 'lightasd', "
                                "'lrasd', "
                                "not 'huge'",
                                "  (rerun with -v for the traceback)"]
    assert main(["-v", *args]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_bug_is_not_dressed_up_as_bad_input(monkeypatch, tmp_path):
    def broken(*_args, **_kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr("asd_se.render.pipeline.render_video", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["render", str(tmp_path / "v.mp4"), "--checkpoint", str(tmp_path / "c.pt")])
