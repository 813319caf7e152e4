"""Explainers against their definitions computed by hand, faithfulness metrics on crafted maps, explain-eval."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from asd_se.cli import main
from asd_se.explain import ChannelSelection, build_explainer
from asd_se.explain.se_map import SeExplainer
from asd_se.explain_eval.faithfulness import average_drop_increase, curve_auc, perturbation_curves
from asd_se.explain_eval.localisation import energy_inside, pointing_hits, rank_inside
from asd_se.models import ActiveSpeakerModel, ASDOutput
from asd_se.models.checkpoint import save_checkpoint
from asd_se.models.config import load_config
from asd_se.scoring.engine import score_clip
from data_prep.prep import PrepConfig, prepare


class ToyModel(nn.Module):
    """A convolution gives maps ``(1, C, T, 4, 4)``; frame t's logit is sum_c w_c sum_hw A_t,c^2 plus a term
    from the previous frame (so a frame's logit also depends on other frames' maps)."""

    audio_context = (0, 0)  # it ignores the audio

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, stride=2, padding=1)
        self.weights = nn.Parameter(torch.linspace(-1.0, 1.5, 6))
        self.se = None

    def visual_maps(self, faces: torch.Tensor) -> torch.Tensor:
        maps = self.conv(faces[0].float()[:, None] / 255.0)  # (T, C, 4, 4)
        return maps.transpose(0, 1)[None]

    def decide(self, maps: torch.Tensor, audio: torch.Tensor, explain: bool = False) -> ASDOutput:
        per_frame = torch.einsum("bcthw,c->bt", maps ** 2, self.weights)
        logits = per_frame + 0.5 * torch.roll(per_frame, 1, dims=1)
        return ASDOutput(logits, logits, logits, maps.transpose(1, 2), None)

    def forward(self, faces: torch.Tensor, audio: torch.Tensor, explain: bool = False) -> ASDOutput:
        return self.decide(self.visual_maps(faces), audio, explain)


def _normalised(raw: np.ndarray) -> np.ndarray:
    positive = np.maximum(raw, 0)
    return positive / positive.max() if positive.max() > 0 else positive


@pytest.fixture(scope="module")
def toy():
    torch.manual_seed(0)
    model = ToyModel().eval()
    faces = torch.randint(0, 256, (1, 5, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        activations = model.visual_maps(faces)[0].transpose(0, 1).numpy()  # (T, C, h, w)
    gradients = 2 * model.weights.detach().numpy()[None, :, None, None] * activations  # d logit_t / d A_t
    return model, faces, activations, gradients


def _gradcam_by_hand(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    return np.tensordot(gradients.mean(axis=(1, 2)), activations, axes=1)


def _gradcampp_by_hand(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    weights = np.zeros(len(activations))
    for c in range(len(activations)):
        total = activations[c].sum()
        for g in gradients[c].reshape(-1):
            denominator = 2 * g ** 2 + total * g ** 3
            alpha = g ** 2 / denominator if g != 0 and denominator != 0 else 0.0
            weights[c] += alpha * max(g, 0.0)
    return np.tensordot(weights, activations, axes=1)


def _eigencam_by_hand(activations: np.ndarray, gradients: np.ndarray) -> np.ndarray:
    pixels = activations.reshape(len(activations), -1).T  # (hw, C)
    centred = pixels - pixels.mean(axis=0)
    _, _, vh = np.linalg.svd(centred, full_matrices=False)
    projection = centred @ vh[0]
    projection *= np.sign((projection * pixels.mean(axis=1)).sum()) or 1.0
    return projection.reshape(activations.shape[1:])


@pytest.mark.parametrize("name, by_hand", [("gradcam", _gradcam_by_hand), ("gradcampp", _gradcampp_by_hand),
                                           ("eigencam", _eigencam_by_hand)])
def test_baselines_match_their_definitions(toy, name, by_hand):
    model, faces, activations, gradients = toy
    maps = score_clip(model, faces, torch.zeros(1, 5 * 640), [build_explainer(name)]).maps[name]
    for t in range(5):
        expected = _normalised(by_hand(activations[t], gradients[t]))
        assert np.allclose(maps[t].numpy(), expected, atol=1e-4), (name, t)


def test_the_centre_baseline_peaks_at_the_centre_whatever_the_input(toy):
    model, faces, _, _ = toy
    maps = [score_clip(model, clip, torch.zeros(1, 5 * 640), [build_explainer("centre")]).maps["centre"]
            for clip in (faces, 255 - faces)]
    assert torch.equal(maps[0], maps[1]) and torch.equal(maps[0][0], maps[0][4])
    height, width = maps[0].shape[1:]
    peak = divmod(int(maps[0][0].argmax()), width)
    assert abs(peak[0] - (height - 1) / 2) <= 0.5 and abs(peak[1] - (width - 1) / 2) <= 0.5
    assert float(maps[0][0].max()) == 1.0 and float(maps[0][0].min()) < 0.5


def _mean_map(feature_maps: torch.Tensor, chosen: np.ndarray) -> torch.Tensor:
    """By hand: the mean of the chosen channels of ``(T, C, h, w)``, ReLU, each map scaled to peak 1."""
    mean = feature_maps[:, torch.from_numpy(chosen)].mean(dim=1).clamp(min=0)
    return mean / mean.amax(dim=(1, 2), keepdim=True)


def test_se_map_is_the_threshold_topped_up_to_the_floor_and_the_paper_rule_alone_on_request():
    torch.manual_seed(3)
    model = ActiveSpeakerModel(load_config(None).model).eval()
    with torch.no_grad():  # a left-skewed SE vector, as trained models make: three channels stand out
        excite = model.se.excite[2]
        excite.weight.zero_()
        excite.bias.copy_(torch.linspace(-2.0, -1.0, excite.bias.numel()))
        excite.bias[[5, 50, 100]] = 3.0
    faces = torch.randint(0, 256, (1, 6, 112, 112), dtype=torch.uint8)
    audio = torch.zeros(1, 6 * 640)
    with torch.no_grad():
        maps = model.visual_maps(faces)
        output = model.decide(maps, audio, explain=True)
    se = output.se_weights[0].numpy().astype(np.float64)
    rule = se > se.mean() + 1.282 * se.std()
    floor = max(1, round(0.05 * len(se)))
    assert rule.sum() == 3 < floor  # the paper's rule alone would follow three channels
    topped = se >= np.sort(se)[-floor]
    feature_maps = output.feature_maps[0]
    default, paper = SeExplainer(), SeExplainer(ChannelSelection(floor=0))
    assert torch.allclose(default(model, maps, audio, output), _mean_map(feature_maps, topped), atol=1e-5)
    assert torch.allclose(paper(model, maps, audio, output), _mean_map(feature_maps, rule), atol=1e-5)
    ranked = default.channels(output)[0]
    assert set(ranked) == set(np.flatnonzero(topped)) and list(se[ranked]) == sorted(se[ranked], reverse=True)


# Crafted maps on 10 x 10 crops; the "mouth" is the bottom row (10% of the pixels).
MOUTH = torch.tensor([[0.0, 9.0, 10.0, 10.0]])  # x1, y1, x2, y2 in crop pixels
PERFECT = torch.zeros(1, 10, 10)
PERFECT[0, 9] = 1.0
INVERTED, UNIFORM = 1.0 - PERFECT, torch.full((1, 10, 10), 0.5)


def test_pointing_and_energy_on_crafted_maps():
    assert pointing_hits(PERFECT, MOUTH).tolist() == [True]
    assert pointing_hits(INVERTED, MOUTH).tolist() == [False]
    assert pointing_hits(UNIFORM, MOUTH).tolist() == [False]  # a flat map points nowhere
    assert energy_inside(PERFECT, MOUTH).tolist() == pytest.approx([1.0])
    assert energy_inside(INVERTED, MOUTH).tolist() == pytest.approx([0.0])
    assert energy_inside(UNIFORM, MOUTH).tolist() == pytest.approx([0.1])


def test_the_tolerant_pointing_game_and_relevance_rank_on_a_hand_made_map_and_box():
    box = torch.tensor([[10.0, 10.0, 20.0, 20.0]] * 3)  # x1, y1, x2, y2: 100 pixels of a 40 x 40 crop
    heat = torch.zeros(3, 40, 40)
    heat[0, 15, 15] = 1.0  # peak inside
    heat[1, 15, 27] = 1.0  # peak 7.5 px right of the box (pixel centre 27.5)
    heat[2, 35, 35] = 1.0  # peak 15.5 px right and 15.5 px below: 21.9 px away
    assert pointing_hits(heat, box).tolist() == [True, False, False]
    assert pointing_hits(heat, box, 10.0).tolist() == [True, True, False]
    assert pointing_hits(heat, box, torch.tensor([0.0, 5.0, 25.0])).tolist() == [True, False, True]  # per frame
    ranked = torch.zeros(2, 40, 40)
    ranked[0, 10:20, 10:20] = 1.0  # the box exactly: its 100 highest pixels all inside
    ranked[1, 10:20, 10:15] = 1.0  # half the box at 1, half at 0.5 ...
    ranked[1, 10:20, 15:20] = 0.5
    ranked[1, 30:40, 30:35] = 0.9  # ... and 50 pixels outside at 0.9: the top 100 are 50 in + 50 out
    assert rank_inside(ranked, box[:2]).tolist() == pytest.approx([1.0, 0.5])
    assert rank_inside(torch.zeros(1, 40, 40), box[:1]).tolist() == [0.0]
    assert energy_inside(ranked, box[:2]).tolist() == pytest.approx([1.0, 75 / 120])


def _mouth_brightness(faces: torch.Tensor) -> torch.Tensor:
    """A toy score: how bright the mouth row still is (1 intact, 0 removed)."""
    return faces[:, 9].float().mean(dim=1) / 200.0


@pytest.mark.parametrize("heat, deletion, insertion", [(PERFECT, 0.05, 0.95), (INVERTED, 0.95, 0.05),
                                                      (UNIFORM, 0.95, 0.05)])  # flat: raster order, mouth last
def test_deletion_and_insertion_auc_on_crafted_maps(heat, deletion, insertion):
    faces, baseline = torch.full((1, 10, 10), 200, dtype=torch.uint8), torch.zeros((1, 10, 10), dtype=torch.uint8)
    deleted = perturbation_curves(_mouth_brightness, faces, heat, baseline, steps=10)
    inserted = perturbation_curves(_mouth_brightness, faces, heat, baseline, steps=10, insertion=True)
    assert curve_auc(deleted).tolist() == pytest.approx([deletion])
    assert curve_auc(inserted).tolist() == pytest.approx([insertion])


def test_average_drop_and_increase():
    drop, increase = average_drop_increase(torch.tensor([0.8, 0.5, 0.4]), torch.tensor([0.4, 0.5, 0.6]))
    assert drop == pytest.approx(100 * (0.5 + 0 + 0) / 3) and increase == pytest.approx(100 / 3)


def test_explain_eval_on_a_tiny_store(store_root, synth_root, tmp_path, capsys):
    config = load_config(None)
    checkpoint = tmp_path / "model.pt"
    save_checkpoint(checkpoint, {"model": ActiveSpeakerModel(config.model).state_dict(), "config": config.to_dict()})
    out = tmp_path / "eval"
    assert main(["explain-eval", "--checkpoint", str(checkpoint), "--data", str(store_root), "--out", str(out),
                 "--max-frames", "100", "--window", "50", "--steps", "2", "--sanity-frames", "50",
                 "--sanity-seeds", "2"]) == 0
    results = json.loads((out / "explain_eval.json").read_text())
    # the store knows its annotation CSVs, so their sidecar was found without --mouth-boxes
    assert results["mouth_boxes"] == [str((synth_root / "mouth_boxes" / "val.csv").resolve())]
    assert set(results["methods"]) == {"se", "gradcam", "gradcampp", "eigencam", "se_contrast", "centre"}
    assert 50 < results["frames"] <= 100
    counts = {(v["n_pointing_all"], v["n_speaking_frames"]) for v in results["methods"].values()}
    assert len(counts) == 1 and min(counts.pop()) > 0  # every method measured on the same frames
    for values in results["methods"].values():
        assert values["total_ms_per_frame"] > values["forward_ms_per_frame"] > 0
    assert results["per_track"] and (out / "grid.png").stat().st_size > 0 and (out / "se_distribution.png").exists()
    table = (out / "explain_eval.md").read_text()
    assert all(f"| {name} |" in table for name in results["methods"])
    for values in results["methods"].values():  # a tolerance can only add hits; ranks are shares
        assert values["pointing_tolerant_speaking"] >= values["pointing_speaking"]
        assert 0.0 <= values["rank_speaking"] <= 1.0
    cascade = results["randomisation_cascade"]
    assert len(cascade) >= 5 and cascade[0]["stage"] == "decision"
    assert all(set(step["spearman"]) == set(results["methods"]) for step in cascade)
    assert all(len(seeds) == 2 for step in cascade for seeds in step["spearman_per_seed"].values())
    assert set(results["consistency"]) == set(results["methods"])
    assert "## Sanity: cascading randomisation" in table and (out / "randomisation.png").stat().st_size > 0
    # the centre baseline explains nothing: the same map whatever the weights, so it fails randomisation
    assert cascade[-1]["spearman"]["centre"] > 0.99
    usage = results["se_channels"]  # every frame measured is counted under its class
    assert usage["speaking"]["frames"] + usage["silent"]["frames"] == results["frames"]
    assert usage["speaking"]["channels_per_frame"] >= 1 and 0.0 <= usage["overlap"] <= 1.0
    assert "## SE channels selected" in table


def test_explain_eval_without_mouth_boxes_says_so_in_one_prominent_line(synth_copy, checkpoint, tmp_path, caplog):
    store = tmp_path / "store"
    prepare(PrepConfig((synth_copy / "annotations" / "val.csv",), synth_copy / "videos", store))
    shutil.rmtree(synth_copy / "mouth_boxes")
    out = tmp_path / "eval"
    assert main(["explain-eval", "--checkpoint", str(checkpoint), "--data", str(store), "--out", str(out),
                 "--methods", "se", "--max-frames", "50", "--window", "50", "--steps", "2"]) == 0
    assert sum("NO MOUTH BOXES" in r.message for r in caplog.records) == 1
    assert (out / "explain_eval.md").read_text().splitlines()[2].startswith("**NO MOUTH BOXES")
    assert json.loads((out / "explain_eval.json").read_text())["mouth_boxes"] is None
