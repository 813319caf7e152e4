"""Model shapes, parameter counts, the SE vector, and the audio front end."""

from __future__ import annotations

import pytest
import torch

from asd_se.core.errors import ConfigError
from asd_se.models import ActiveSpeakerModel, build_model, count_parameters, lightasd
from asd_se.models.asd import FACE_MEAN, FACE_STD
from asd_se.models.config import ModelConfig, load_config
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.visual import EVAL_CHUNK


def _inputs(batch: int = 2, frames: int = 6):
    torch.manual_seed(0)
    return torch.randint(0, 256, (batch, frames, 112, 112), dtype=torch.uint8), torch.randn(batch, frames * 640) * 0.1


@pytest.mark.parametrize("variant, low, high, channels", [("light", 0.5e6, 1.5e6, 192),
                                                          ("resnet18", 10e6, 14e6, 512)])
def test_variants_shapes_and_sizes(variant, low, high, channels):
    model = ActiveSpeakerModel(ModelConfig(variant=variant)).eval()
    assert low < count_parameters(model) < high
    faces, audio = _inputs()
    with torch.no_grad():
        out = model(faces, audio, explain=True)
    for logits in (out.logits, out.audio_logits, out.visual_logits):
        assert logits.shape == (2, 6)
    assert out.feature_maps.shape == (2, 6, channels, 7, 7)
    assert out.se_weights.shape == (2, channels)
    assert ((out.se_weights > 0) & (out.se_weights < 1)).all()


def test_frame_squeeze_gives_one_se_vector_per_frame():
    model = ActiveSpeakerModel(ModelConfig(se_squeeze="frame")).eval()
    with torch.no_grad():
        out = model(*_inputs(), explain=True)
    assert out.se_weights.shape == (2, 6, 192)


def test_light_maps_can_be_14_by_14_with_the_same_parameters():
    coarse, fine = ActiveSpeakerModel(ModelConfig()), ActiveSpeakerModel(ModelConfig(map_size=14)).eval()
    assert count_parameters(fine) == count_parameters(coarse)
    with torch.no_grad():
        out = fine(*_inputs(), explain=True)
    assert out.feature_maps.shape == (2, 6, 192, 14, 14) and out.se_weights.shape == (2, 192)
    with pytest.raises(ConfigError, match="map_size"):
        ModelConfig(variant="resnet18", map_size=14)


def test_se_off_is_the_same_model_without_the_block():
    with_se, without = ActiveSpeakerModel(ModelConfig()), ActiveSpeakerModel(ModelConfig(se=False))
    se_params = count_parameters(with_se.se)
    assert count_parameters(with_se) - count_parameters(without) == se_params > 0
    with torch.no_grad():
        out = without.eval()(*_inputs(), explain=True)
    assert out.se_weights is None and out.feature_maps.shape == (2, 6, 192, 7, 7)


def test_explain_does_not_change_the_decision():
    model = ActiveSpeakerModel(ModelConfig()).eval()
    faces, audio = _inputs()
    with torch.no_grad():
        assert torch.equal(model(faces, audio).logits, model(faces, audio, explain=True).logits)


def test_mfcc_front_end_gives_four_frames_per_video_frame():
    frontend = MfccFrontEnd()
    audio = torch.randn(3, 25 * 640)
    mfcc = frontend(audio, 25)
    assert mfcc.shape == (3, 13, 100)
    silence = frontend(torch.zeros(1, 640), 1)
    assert torch.allclose(silence, silence[:, :, :1].expand_as(silence))  # constant input, constant features
    assert not torch.allclose(mfcc[0], mfcc[1])


@pytest.mark.parametrize("variant, statistics", [("light", (FACE_MEAN, FACE_STD)), ("resnet18", (FACE_MEAN, FACE_STD)),
                                                 ("lightasd", (lightasd.FACE_MEAN, lightasd.FACE_STD))])
def test_chunked_visual_encoding_outside_training_equals_one_pass(variant, statistics):
    overrides = [f"model.variant={variant}"] + (["model.map_size=14"] if variant == "lightasd" else [])
    model = build_model(load_config(None, overrides).model).eval()
    faces = torch.randint(0, 256, (1, EVAL_CHUNK * 2 + 17, 112, 112), dtype=torch.uint8)
    mean, std = statistics
    with torch.no_grad():
        chunked = model.visual_maps(faces)
        whole = model.visual(((faces.float() / 255.0 - mean) / std).unsqueeze(1))
    assert chunked.shape == whole.shape and torch.allclose(chunked, whole, atol=1e-4)
