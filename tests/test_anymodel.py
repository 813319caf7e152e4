"""The any-model SE explainer (asd_se.explain.anymodel): torchvision architectures, 3-D and multi-input models,
the identity start, the map it makes, and what bad use gets."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from asd_se.core.errors import ModelError
from asd_se.explain import ChannelSelection
from asd_se.explain.anymodel import SeGates, SqueezeExplainer, insert_se
from asd_se.explain.maps import normalise


@pytest.fixture(scope="module")
def models():
    try:
        from asd_se.core.torchvision_models import torchvision_models
        return torchvision_models()
    except ImportError as error:
        pytest.skip(f"torchvision is not installed ({error}); scripts/test.sh installs it")


class Clips(nn.Module):
    """A small 3-D CNN over ``(B, 3, T, H, W)`` clips, pooled by a named layer."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
                                     nn.Conv3d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(16, 2)

    def forward(self, clips):
        return self.head(self.pool(self.encoder(clips)).flatten(1))


class TwoInputs(nn.Module):
    """An image and a side vector (a sound embedding, say), fused after the image encoder's maps."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 12, 3, padding=1), nn.ReLU(), nn.Conv2d(12, 12, 3, stride=2))
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(12 + 4, 3)

    def forward(self, image, side):
        return self.head(torch.cat([self.pool(self.encoder(image)).flatten(1), side], dim=1))


class Passthrough(nn.Module):
    """Its input is its maps: an SE map here is the selected input channels' mean, known in advance."""

    def __init__(self, channels: int = 6):
        super().__init__()
        self.features = nn.Identity()
        self.head = nn.Linear(channels, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def _unchanged_then_explained(model: nn.Module, inputs: tuple, **where):
    model.eval()
    with torch.no_grad():
        before = model(*inputs)
    se = insert_se(model, tuple(x[:1] for x in inputs), **where)
    with torch.no_grad():
        assert torch.equal(model(*inputs), before)  # identity start: exactly the same outputs
    return SqueezeExplainer(model, se)(*inputs)


@pytest.mark.parametrize("name,where,kwargs", [
    ("resnet18", {"before": "avgpool"}, {}),
    ("mobilenet_v2", {"after": "features"}, {}),
    ("efficientnet_b0", {"before": "avgpool"}, {}),
    ("inception_v3", {"before": "avgpool"}, {"aux_logits": False, "init_weights": True}),
])
def test_torchvision_models_keep_their_outputs_and_explain_a_batch(models, name, where, kwargs):
    torch.manual_seed(0)
    images = torch.randn(3, 3, 80, 96)
    explained = _unchanged_then_explained(getattr(models, name)(num_classes=4, **kwargs), (images,), **where)
    assert explained.output.shape == (3, 4)
    assert explained.maps.shape == (3, 80, 96) and explained.maps.min() >= 0 and explained.maps.max() <= 1
    assert explained.se_weights.shape[0] == 3 and len(explained.channels) == 3


def test_3d_and_two_input_models():
    torch.manual_seed(0)
    clips = _unchanged_then_explained(Clips(), (torch.randn(2, 3, 8, 32, 32),), before="pool")
    assert clips.maps.shape == (2, 8, 32, 32) and clips.se_weights.shape == (2, 16)
    pair = _unchanged_then_explained(TwoInputs(), (torch.randn(2, 3, 20, 20), torch.randn(2, 4)), before="pool")
    assert pair.maps.shape == (2, 20, 20) and pair.output.shape == (2, 3)


def test_the_map_is_the_mean_of_the_channels_the_se_vector_selects():
    model = Passthrough().eval()
    x = torch.rand(2, 6, 9, 9)
    se = insert_se(model, x[:1], after="features")
    with torch.no_grad():  # a trained block: channels 3 and 5 rated far above the rest, for every input
        se.excite[2].bias.copy_(torch.tensor([-4.0, -4, -4, 4, -4, 1]))
    explained = SqueezeExplainer(model, se, ChannelSelection(mode="rank", top=2 / 6))(x)
    assert explained.channels == [[3, 5], [3, 5]]
    assert torch.allclose(explained.maps, normalise(x[:, [3, 5]].mean(dim=1)), atol=1e-6)
    threshold = SqueezeExplainer(model, se, ChannelSelection(floor=0))(x)  # the paper's rule alone
    assert threshold.channels == [[3], [3]]


def test_the_contrast_map_is_the_selected_channels_component_beyond_what_every_channel_shows():
    from asd_se.explain.eigencam import principal_map

    torch.manual_seed(0)
    model, x = Passthrough().eval(), torch.rand(2, 6, 9, 9)
    se = insert_se(model, x[:1], after="features")
    with torch.no_grad():
        se.excite[2].bias.copy_(torch.tensor([-4.0, -4, -4, 4, -4, 1]))
    explainer = SqueezeExplainer(model, se, ChannelSelection(mode="rank", top=2 / 6), contrast=True)
    explained = explainer(x)
    remainder = x - x.mean(dim=1, keepdim=True)
    assert explained.channels == [[3, 5], [3, 5]]
    assert torch.allclose(explained.maps, normalise(principal_map(remainder[:, [3, 5]])), atol=1e-5)
    assert not torch.allclose(explained.maps, SqueezeExplainer(model, se, explainer.selection)(x).maps, atol=1e-2)
    shared = torch.rand(2, 1, 9, 9) * 5  # a pattern every channel shows: no part of the map (the SE vector moves)
    moved = explainer(x + shared)
    assert moved.channels == explained.channels
    assert torch.allclose(moved.maps, explained.maps, atol=1e-4)
    clips = Clips().eval()
    clip_se = insert_se(clips, torch.randn(1, 3, 8, 32, 32), before="pool")
    assert SqueezeExplainer(clips, clip_se, contrast=True)(torch.randn(2, 3, 8, 32, 32)).maps.shape == (2, 8, 32, 32)


class Pooled(nn.Module):
    """Convolutions, global average pooling, a linear head: CAM's setting."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 10, 3, stride=2),
                                      nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(10, classes)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def _trained_pooled() -> tuple[Pooled, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model, x = Pooled().eval(), torch.randn(4, 3, 15, 15)
    se = insert_se(model, x[:1], before="pool", reduction=4)
    with torch.no_grad():
        se.excite[2].weight.normal_()
    return model, se, x


def test_the_class_map_over_every_channel_is_grad_cam_without_a_gradient():
    model, se, x = _trained_pooled()
    with torch.no_grad():  # gates that rank channels but do not depend on the input: no gradient through them,
        se.excite[0].weight.zero_()  # so Grad-CAM's weights are exactly the head's times the SE values
        se.excite[0].bias.uniform_(0.5, 1)
    everything = ChannelSelection(mode="rank", top=1.0)
    targets = torch.tensor([0, 2, 1, 2])
    explained = SqueezeExplainer(model, se, everything, head=model.fc)(x, size=(7, 7), targets=targets)
    captured = {}
    model.features.register_forward_hook(lambda m, a, out: captured.update(maps=out))
    with torch.enable_grad():
        model(x).gather(1, targets[:, None]).sum().backward(inputs=[captured["maps"]])
    maps, gradients = captured["maps"], captured["maps"].grad  # (4, 10, 7, 7) each
    grad_cam = normalise((gradients.mean(dim=(2, 3), keepdim=True) * maps).sum(dim=1))
    assert torch.allclose(explained.maps, grad_cam, atol=1e-5)
    by_default = SqueezeExplainer(model, se, everything, head=model.fc)(x, size=(7, 7))
    predicted = SqueezeExplainer(model, se, everything, head=model.fc)(x, size=(7, 7),
                                                                       targets=by_default.output.argmax(1))
    assert torch.equal(by_default.maps, predicted.maps)  # no targets: each item's predicted class
    assert not torch.allclose(by_default.maps, SqueezeExplainer(model, se, everything, head=model.fc)(
        x, size=(7, 7), targets=(by_default.output.argmax(1) + 1) % 3).maps, atol=1e-2)


def test_the_class_map_keeps_to_the_channels_the_se_vector_selects():
    model, se, x = _trained_pooled()
    explained = SqueezeExplainer(model, se, ChannelSelection(mode="rank", top=0.3), head=model.fc)(
        x, size=(7, 7), targets=torch.zeros(4, dtype=torch.long))
    maps = model.features(x).detach()
    for item, channels in enumerate(explained.channels):
        assert len(channels) == 3
        weights = explained.se_weights[item, channels] * model.fc.weight[0, channels].detach()
        expected = normalise((weights[:, None, None] * maps[item, channels]).sum(dim=0)[None])[0]
        assert torch.allclose(explained.maps[item], expected, atol=1e-5)


def test_bad_use_of_the_class_map_gets_a_clear_error():
    model, se, x = _trained_pooled()
    with pytest.raises(ModelError, match="choose one"):
        SqueezeExplainer(model, se, contrast=True, head=model.fc)
    with pytest.raises(ModelError, match="own nn.Linear .* not a Sequential"):
        SqueezeExplainer(model, se, head=model.features)
    with pytest.raises(ModelError, match="own nn.Linear"):
        SqueezeExplainer(model, se, head=nn.Linear(10, 3))
    with pytest.raises(ModelError, match=r"targets= needs 4 class indices in \[0, 3\)"):
        SqueezeExplainer(model, se, head=model.fc)(x, targets=torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ModelError, match="targets= needs 4"):
        SqueezeExplainer(model, se, head=model.fc)(x, targets=torch.tensor([0, 1]))
    fused, inputs = TwoInputs().eval(), (torch.randn(2, 3, 16, 16), torch.randn(2, 4))
    fused_se = insert_se(fused, inputs, before="pool")  # its head reads the pooled maps and a side vector
    with pytest.raises(ModelError, match="head= reads 16 features but the SE block weighs 12 channels"):
        SqueezeExplainer(fused, fused_se, head=fused.head)(*inputs)


@pytest.mark.parametrize("positions,channels", [(25, 40), (25, 6), (1, 3)])
def test_the_principal_map_is_the_first_singular_component_whichever_side_is_smaller(positions, channels):
    from asd_se.explain.eigencam import principal_map

    torch.manual_seed(0)
    maps = torch.rand(3, channels, positions)
    pixels = maps.transpose(1, 2) - maps.transpose(1, 2).mean(dim=1, keepdim=True)  # (N, P, C)
    u, sigma, _ = torch.linalg.svd(pixels.double(), full_matrices=False)
    expected = (u[..., 0] * sigma[..., :1]).float()
    expected *= torch.sign((expected * maps.mean(dim=1)).sum(dim=1, keepdim=True))
    assert torch.allclose(principal_map(maps), expected, atol=1e-4)
    kept = torch.arange(channels) % 3 == 0  # channels that are exactly zero (unselected, dead) change nothing
    assert torch.allclose(principal_map(maps * kept[:, None]), principal_map(maps[:, kept]), atol=1e-4)


def test_one_forward_pass_per_batch_and_items_independent():
    torch.manual_seed(0)
    model, images = TwoInputs().eval(), (torch.randn(4, 3, 16, 16), torch.randn(4, 4))
    se = insert_se(model, images, before="pool")
    with torch.no_grad():
        se.excite[2].weight.normal_()
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    batch = SqueezeExplainer(model, se)(*images)
    assert len(calls) == 1
    alone = SqueezeExplainer(model, se)(images[0][2:3], images[1][2:3])
    assert torch.allclose(batch.maps[2], alone.maps[0], atol=1e-6) and batch.channels[2] == alone.channels[0]


def test_the_block_trains_saves_and_loads_with_the_model():
    torch.manual_seed(0)
    model, x = Clips(), torch.randn(2, 3, 4, 16, 16)
    se = insert_se(model, x, before="pool", reduction=4)
    assert "pool.se.excite.0.weight" in model.state_dict()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    model(x).sum().backward()
    optimiser.step()
    assert not se.untrained  # it was among the parameters the optimiser moved
    copy = Clips()
    insert_se(copy, x, before="pool", reduction=4)
    copy.load_state_dict(model.state_dict())
    model.eval(), copy.eval()
    assert torch.equal(SqueezeExplainer(copy, copy.pool.se)(x).maps, SqueezeExplainer(model, se)(x).maps)
    assert torch.equal(pickle.loads(pickle.dumps(model))(x), model(x))


def test_gates_record_the_se_vectors_inside_the_block_only_and_train_them_shut():
    torch.manual_seed(0)
    model, images = TwoInputs(), (torch.randn(6, 3, 16, 16), torch.randn(6, 4))
    se = insert_se(model, images, before="pool")
    with torch.no_grad():
        se.excite[2].weight.normal_(std=0.3)
    model(*images)  # outside the block: nothing kept
    with SeGates(se) as gates:
        assert float(gates.mean()) == 0.0
        model(*images)
    model(*images)
    assert len(gates.gates) == 1 and gates.gates[0].shape == (6, 12) and gates.gates[0].requires_grad
    assert torch.allclose(gates.mean(), SqueezeExplainer(model.eval(), se)(*images).se_weights.mean())
    model.train()

    def trained(weight: float) -> float:
        copy = pickle.loads(pickle.dumps(model))
        block = copy.pool.se
        optimiser = torch.optim.Adam(copy.parameters(), lr=1e-2)
        target = torch.zeros(6, dtype=torch.long)
        for _ in range(40):
            with SeGates(block) as gates:
                loss = nn.functional.cross_entropy(copy(*images), target) + weight * gates.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with SeGates(block) as gates, torch.no_grad():
            copy(*images)
        return float(gates.mean())

    assert trained(1.0) < trained(0.0) - 0.1  # the term closes gates the task does not need
    with pytest.raises(ModelError, match="SE block insert_se returned, not a Linear"):
        SeGates(model.head)


def test_probing_for_the_channels_leaves_a_training_model_as_it_was():
    model, x = Clips().train(), torch.randn(2, 3, 4, 16, 16)
    model.encoder[1].eval()  # a frozen batch norm inside a training model stays frozen
    stats = model.encoder[1].running_mean.clone()
    insert_se(model, x, before="pool")
    assert model.training and model.head.training and not model.encoder[1].training
    assert torch.equal(model.encoder[1].running_mean, stats)


def test_bad_use_gets_a_clear_error():
    model, x = TwoInputs(), (torch.randn(1, 3, 16, 16), torch.randn(1, 4))
    with pytest.raises(ModelError, match="no layer 'pol'; did you mean pool"):
        insert_se(model, x, before="pol")
    with pytest.raises(ModelError, match=r"entering layer 'head' is \(1, 16\): no spatial maps"):
        insert_se(model, x, before="head")
    with pytest.raises(ModelError, match="exactly one of before= or after="):
        insert_se(model, x)
    unused = TwoInputs()
    unused.spare = nn.Conv2d(3, 3, 1)
    with pytest.raises(ModelError, match="'spare' is never called"):
        insert_se(unused, x, before="spare")
    se = insert_se(model, x, before="pool")
    with pytest.raises(ModelError, match="already inserted before 'pool'"):
        insert_se(model, x, before="pool")
    with pytest.raises(ModelError, match="training mode: call model.eval"):
        SqueezeExplainer(model.train(), se)(*x)
    with pytest.raises(ModelError, match="not part of the model"):
        SqueezeExplainer(TwoInputs(), se)


class Nested(nn.Module):
    """A user's model of nested Sequentials, as most hand-written CNNs are."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()),
                                  nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))

    def forward(self, x):
        return self.head(self.body(x))


@pytest.mark.parametrize("name,where", [
    ("mobilenet_v2", {"after": "features.2"}),
    ("mobilenet_v2", {"before": "features.4"}),
    ("vgg11", {"after": "features.2"}),
    ("resnet18", {"after": "layer2.0"}),
    ("efficientnet_b0", {"after": "features.3"}),
])
def test_a_layer_inside_a_sequential_keeps_the_models_outputs_and_its_weights_keys(models, name, where):
    torch.manual_seed(0)
    model, images = getattr(models, name)(num_classes=4).eval(), torch.randn(2, 3, 64, 64)
    weights = {key: value.clone() for key, value in model.state_dict().items()}
    explained = _unchanged_then_explained(model, (images,), **where)  # an SE block added as the Sequential's
    assert explained.maps.shape == (2, 64, 64)  # child ran at its end too: the model's forward then failed
    new = set(model.state_dict()) - set(weights)
    assert new and all(".se." in key for key in new)  # the layer's own keys are as they were
    fresh = getattr(models, name)(num_classes=4).eval()
    insert_se(fresh, images[:1], **where)
    loaded = fresh.load_state_dict(weights, strict=False)  # weights saved before the block load after it
    assert set(loaded.missing_keys) == new and not loaded.unexpected_keys


def test_a_users_nested_sequential_the_wrapped_layers_attributes_and_a_second_block():
    torch.manual_seed(0)
    model, x = Nested().eval(), torch.randn(2, 3, 16, 16)
    _unchanged_then_explained(model, (x,), after="body.1")
    _unchanged_then_explained(model, (x,), before="body.1")  # the other side of the same layer
    _unchanged_then_explained(model, (x,), after="body.0.0")  # a convolution two Sequentials deep
    convolution = model.body[0][0]
    assert convolution.weight is convolution.layer.weight and convolution.kernel_size == (3, 3)  # read through
    with pytest.raises(ModelError, match="already inserted after 'body.1'"):
        insert_se(model, x, after="body.1")
    assert torch.equal(pickle.loads(pickle.dumps(model))(x), model(x))


def test_a_nan_input_gets_an_error_not_a_confident_map():
    model, x = Nested().eval(), torch.randn(3, 3, 16, 16)
    se = insert_se(model, x[:1], after="body.1")
    x[1] = float("nan")
    with pytest.raises(ModelError, match=r"batch item\(s\) 1: the model's output or the maps .* NaN"):
        SqueezeExplainer(model, se)(x)
    SqueezeExplainer(model, se)(x[[0, 2]])  # the finite items alone are explained
