"""Convolution steps in eval mode (BatchNorm folded, 2-D convolutions over views) give the maps their modules give,
for every kernel shape the encoders use, on channels-last and plain inputs, and follow the current weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from asd_se.models.framewise import ConvStep, FrameMaxPool
from asd_se.models.visual import channels_last_convolutions


def _reference(step: ConvStep, x: torch.Tensor, time_padding: int | None = None) -> torch.Tensor:
    """The step as its modules compute it, one after another."""
    conv = step.conv
    padding = conv.padding if time_padding is None else (time_padding, *conv.padding[1:])
    out = conv._conv_forward(x, conv.weight, conv.bias) if time_padding is None else \
        nn.functional.conv3d(x, conv.weight, conv.bias, conv.stride, padding)
    return torch.relu(step.bn(out))


def _randomised(step: ConvStep) -> ConvStep:
    """Running statistics and affine parameters away from their initial values (else the fold is trivial)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor, low, high in ((step.bn.running_mean, -1, 1), (step.bn.running_var, 0.3, 3),
                                  (step.bn.weight, 0.5, 1.5), (step.bn.bias, -0.5, 0.5)):
            tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return step.eval()


@pytest.mark.parametrize("kernel, stride", [((1, 5, 5), (1, 2, 2)), ((1, 3, 3), 1), ((5, 1, 1), 1), ((3, 1, 1), 1),
                                            ((3, 3, 3), 1)])
@pytest.mark.parametrize("channels_last", [True, False])
def test_a_3d_step_in_eval_gives_its_modules_maps(kernel, stride, channels_last):
    torch.manual_seed(0)
    step = _randomised(ConvStep(nn.Conv3d, nn.BatchNorm3d, 8, 16, kernel, stride))
    if channels_last:
        channels_last_convolutions(step)
    x = torch.randn(2, 8, 11, 20, 20)
    x = x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x
    with torch.no_grad():
        expected, got = _reference(step, x), step(x)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
        if kernel[1:] == (1, 1):  # the stream's call: no padding in time
            assert torch.allclose(step(x, time_padding=0), _reference(step, x, 0), atol=1e-5)


def test_a_2d_step_and_a_step_after_new_weights():
    torch.manual_seed(0)
    step = _randomised(ConvStep(nn.Conv2d, nn.BatchNorm2d, 1, 8, (5, 1)))
    x = torch.randn(3, 1, 13, 40)
    with torch.no_grad():
        assert torch.allclose(step(x), torch.relu(step.bn(step.conv(x))), atol=1e-5)
        step.bn.running_mean += 0.7  # as training would move it: the fold reads the weights at each call
        step.conv.weight.mul_(-1)
        assert torch.allclose(step(x), torch.relu(step.bn(step.conv(x))), atol=1e-5)


def test_in_training_a_step_normalises_with_the_batch_and_learns():
    torch.manual_seed(0)
    step = ConvStep(nn.Conv3d, nn.BatchNorm3d, 4, 6, (3, 1, 1)).train()
    x = torch.randn(2, 4, 7, 9, 9) * 5 + 3
    out = step(x)
    before = torch.relu(nn.functional.batch_norm(step.conv(x), None, None, step.bn.weight, step.bn.bias, True,
                                                 0.0, step.bn.eps))
    assert torch.allclose(out, before, atol=1e-5)
    out.sum().backward()
    assert step.conv.weight.grad is not None and step.bn.weight.grad is not None


def test_frame_max_pool_is_the_3d_pool():
    x = torch.randn(2, 5, 6, 17, 17)
    pool = FrameMaxPool(3, 2, 1)
    for tensor in (x, x.contiguous(memory_format=torch.channels_last_3d)):
        assert torch.equal(pool(tensor), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))(tensor))
