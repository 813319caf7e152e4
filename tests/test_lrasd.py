"""LR-ASD in asd-se: its published weights (shipped) through a name map reproduce the reference implementation's own
scores on real face tracks (``tests/fixtures/lrasd``, made by running LR-ASD's repository code on the tracks of
``tests/fixtures/lightasd``), whole and with Columbia_test's multi-duration averaging; bad weight files refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asd_se.cli import main
from asd_se.models.loading import load_model
from asd_se.scoring.engine import score_track

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TRACKS = FIXTURES / "lightasd"  # the inputs: faces, audio (LR-ASD's pre-processing is Light-ASD's)
REFERENCE = FIXTURES / "lrasd"  # LR-ASD's own scores on them
DURATIONS = (1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6)
WEIGHTS = {"pretrain_AVA": "lrasd-ava", "finetuning_TalkSet": "lrasd-talkset"}
TOLERANCE = 1e-3  # the goal; the measured gap is printed by the test's assertion message


def _tracks() -> list[str]:
    return [t["track"] for t in json.loads((REFERENCE / "index.json").read_text())]


@pytest.mark.parametrize("weights", sorted(WEIGHTS))
def test_lrasd_scores_match_the_reference_whole_and_over_durations(weights):
    model, config = load_model(WEIGHTS[weights], torch.device("cpu"))
    assert config.model.variant == "lrasd" and config.model.frontend == config.model.crop == "lightasd"
    worst = 0.0
    for track in _tracks():
        inputs, reference = np.load(TRACKS / f"{track}.npz"), np.load(REFERENCE / f"{track}.npz")
        frames = len(reference[f"score_{weights}_whole"])
        faces, audio = inputs["faces"][:frames], inputs["audio"].astype(np.float32) / 32768.0
        whole = score_track(model, faces, audio, torch.device("cpu"))
        averaged = score_track(model, faces, audio, torch.device("cpu"), durations=DURATIONS)
        gaps = (np.abs(whole.scores - reference[f"score_{weights}_whole"]).max(),
                np.abs(whole.probs - reference[f"prob_{weights}_whole"]).max(),
                np.abs(averaged.scores - reference[f"score_{weights}_durations"]).max())
        worst = max(worst, *gaps)
        assert max(gaps) < TOLERANCE, (track, gaps)
    assert worst < TOLERANCE, worst


def test_the_se_block_starts_as_the_identity():
    plain, _ = load_model("lrasd-talkset", torch.device("cpu"))
    with_se, _ = load_model("lrasd-talkset-se", torch.device("cpu"))
    faces = torch.randint(0, 256, (1, 30, 112, 112), dtype=torch.uint8)
    audio = torch.randn(1, 30 * 640) * 0.1
    with torch.no_grad():
        a, b = plain(faces, audio), with_se(faces, audio, explain=True)
    assert torch.equal(a.logits, b.logits) and torch.all(b.se_weights == 1.0)


def test_import_lrasd_writes_a_checkpoint_and_refuses_light_asd_weights(tmp_path, capsys):
    from asd_se.models.zoo import SHIPPED

    out = tmp_path / "lr.pt"
    assert main(["import", "lrasd", str(SHIPPED["lrasd-ava"].path), "-o", str(out), "--se"]) == 0
    assert load_model(out, torch.device("cpu"))[1].model.variant == "lrasd"
    wrong = tmp_path / "wrong.pt"
    assert main(["import", "lrasd", str(SHIPPED["lightasd-ava"].path), "-o", str(wrong)]) == 1
    assert "not a LR-ASD state dict" in capsys.readouterr().err and not wrong.exists()
