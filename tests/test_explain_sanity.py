"""Sanity checks of explanations: the randomisation cascade catches a method that ignores the model, SSIM and
rank correlation behave on hand-made maps, overlapping windows are compared frame by frame; the SE-eigen map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asd_se.explain import build_explainer
from asd_se.explain.base import Explainer
from asd_se.explain_eval.sanity import (
    overlap_consistency,
    randomisation_cascade,
    randomisation_stages,
    randomised,
    spearman,
    ssim,
)
from asd_se.models import ActiveSpeakerModel
from asd_se.models.config import load_config


class InputOnly(Explainer):
    """A 'method' that ignores the model: a fixed blob where the mouth usually is."""

    name = "input_only"

    def cam(self, activations, gradients, output):
        frames, _, height, width = activations.shape
        ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        blob = torch.exp(-((ys - 0.75 * height) ** 2 + (xs - width / 2) ** 2) / 4.0)
        return blob.expand(frames, -1, -1).clone()


@pytest.fixture(scope="module")
def model_and_clips():
    torch.manual_seed(3)
    model = ActiveSpeakerModel(load_config(None).model).eval()
    generator = torch.Generator().manual_seed(5)
    clips = []
    for _ in range(2):
        faces = torch.randint(0, 255, (12, 112, 112), generator=generator, dtype=torch.uint8)
        audio = torch.randn(12 * 640, generator=generator) * 0.1
        clips.append((faces, audio))
    return model, clips


def test_stages_run_from_the_output_down_to_the_stem(model_and_clips):
    model, _ = model_and_clips
    names = [name for name, _ in randomisation_stages(model)]
    assert names[:2] == ["decision", "se"] and names[-1].startswith("visual.stem")
    assert all(n.startswith("visual.") for n in names[2:]) and len(names) >= 5
    shallow, deep = randomised(model, 1), randomised(model, len(names))
    assert torch.equal(shallow.visual.stem[0].weight, model.visual.stem[0].weight)  # only the decision reset
    assert not torch.equal(shallow.head.weight, model.head.weight)
    assert not torch.equal(deep.visual.stem[0].weight, model.visual.stem[0].weight)
    assert torch.equal(randomised(model, 1, seed=1).head.weight, randomised(model, 1, seed=1).head.weight)
    assert not torch.equal(randomised(model, 1, seed=1).head.weight, randomised(model, 1, seed=2).head.weight)


def test_the_cascade_flags_a_method_that_ignores_the_model(model_and_clips):
    model, clips = model_and_clips
    explainers = [build_explainer("se"), build_explainer("eigencam"), InputOnly()]
    steps = randomisation_cascade(model, explainers, clips, crop_size=112, seeds=(0, 1))
    assert [s.stage for s in steps] == [name for name, _ in randomisation_stages(model)]
    last = steps[-1]
    assert last.spearman["input_only"] == pytest.approx(1.0) and last.ssim["input_only"] == pytest.approx(1.0)
    assert last.spearman_per_seed["input_only"] == pytest.approx([1.0, 1.0])
    assert last.spearman["se"] < 0.9  # the SE map changes once the visual encoder is random
    # the mean over seeds, and each seed its own random model
    assert last.spearman["se"] == pytest.approx(np.mean(last.spearman_per_seed["se"]))
    assert last.spearman_per_seed["se"][0] != pytest.approx(last.spearman_per_seed["se"][1], abs=1e-6)
    assert steps[0].spearman["se"] == pytest.approx(1.0)  # the decision alone reset: SE maps are activations


def test_rank_correlation_and_ssim_on_hand_made_maps():
    ramp = torch.linspace(0, 1, 64).reshape(1, 8, 8)
    assert spearman(ramp, ramp * 0.5).tolist() == pytest.approx([1.0])
    assert spearman(ramp, 1 - ramp).tolist() == pytest.approx([-1.0])
    assert spearman(ramp, torch.zeros(1, 8, 8)).tolist() == [0.0]  # a flat map has no ranking
    big = torch.nn.functional.interpolate(ramp[None], size=(32, 32), mode="bilinear")[0]
    assert ssim(big, big)[0] == pytest.approx(1.0, abs=1e-5)
    assert ssim(big, 1 - big)[0] < 0.0 < ssim(big, (big * 0.9 + 0.05))[0] < 1.0


def test_overlapping_windows_are_compared_on_the_frames_they_share(model_and_clips):
    model, clips = model_and_clips
    faces, audio = clips[0]
    first, second = (faces[:8], audio[:8 * 640]), (faces[4:12], audio[4 * 640:12 * 640])
    found = overlap_consistency(model, [build_explainer("se"), InputOnly()], first, second, offset=4)
    assert found["input_only"].shape == (4,) and np.allclose(found["input_only"], 1.0)
    assert np.all(np.abs(found["se"]) <= 1.0 + 1e-6)


def test_the_se_contrast_map_is_the_principal_component_of_the_selected_channels_beyond_the_shared_part():
    from asd_se.explain.eigencam import principal_map
    from asd_se.models import ASDOutput

    torch.manual_seed(0)
    activations = torch.rand(2, 6, 5, 5)
    se_weights = torch.tensor([[0.1, 0.9, 0.2, 0.95, 0.1, 0.1]])
    output = ASDOutput(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), None, se_weights)
    explainer = build_explainer("se_contrast")
    maps = explainer.cam(activations, None, output)
    chosen = torch.zeros(6, dtype=torch.bool)
    chosen[explainer.channel_weights(activations, None, output)[0] > 0] = True
    assert chosen[1] and chosen[3] and not chosen[0]
    remainder = activations - activations.mean(dim=1, keepdim=True)
    assert torch.allclose(maps, principal_map(remainder[:, chosen]), atol=1e-5)
    assert not torch.allclose(maps, principal_map(activations[:, chosen]), atol=1e-3)  # not the selected channels'
    assert not torch.allclose(maps, principal_map(activations), atol=1e-3)  # nor plain Eigen-CAM
    # a pattern every channel shares is no part of it: adding one changes nothing
    shared = torch.rand(2, 1, 5, 5)
    assert torch.allclose(explainer.cam(activations + shared, None, output), maps, atol=1e-5)


def test_a_method_passes_randomisation_only_if_every_seed_does():
    from asd_se.explain_eval.report import sanity_lines

    step = {"stage": "visual.stem.0", "spearman": {"steady": 0.2, "lucky": 0.225},
            "ssim": {"steady": 0.3, "lucky": 0.3},
            "spearman_per_seed": {"steady": [0.25, 0.15], "lucky": [0.1, 0.35]}}
    verdicts = next(line for line in sanity_lines({"randomisation_cascade": [step]}) if line.startswith("Passes"))
    assert "steady yes (mean 0.20; per seed 0.25, 0.15)" in verdicts
    assert "lucky NO (mean 0.23; per seed 0.10, 0.35)" in verdicts  # its mean alone would have passed
