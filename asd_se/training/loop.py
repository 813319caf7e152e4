"""``asd-se train``: the training loop. One command from a laptop CPU to several GPUs (``torchrun``).

Each epoch ends with an atomic ``last.pt`` (model, optimizer, scheduler, epoch, RNG state, full config),
a ``best.pt`` by val mAP, a line in ``metrics.jsonl`` and a fresh ``curves.png``. ``--resume`` continues from
``last.pt`` exactly: batches and augmentations are functions of (seed, epoch, rank), not of carried state.
``train.freeze: encoders`` keeps the encoders of ``--init`` as they are and trains the SE block and everything
after it from the encoders' features, computed once (``features.py``): the CPU path of fine-tuning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from asd_se.core.devices import resolve_device
from asd_se.core.errors import CheckpointError, InputError, StoreError, TrainingDiverged
from asd_se.core.figures import new_figure, save_figure
from asd_se.core.fsio import check_outputs, write_text_atomic
from asd_se.core.heap import keep_freed_memory
from asd_se.core.progress import Progress
from asd_se.models import build_model, count_parameters
from asd_se.models.checkpoint import checkpoint_config, model_mismatch, save_checkpoint
from asd_se.models.config import Config
from asd_se.models.loading import load_checkpoint
from asd_se.training.batches import BatchDataset, FeatureBatchDataset, LiveWindows, epoch_rng, make_batches
from asd_se.training.breakdowns import overall_interval
from asd_se.training.evaluate import predict_split, summarise
from asd_se.training.features import frozen_parameters, load_features, predict_features
from data_prep.store import TrackStore

log = logging.getLogger(__name__)


RUN_FILES = ("config.yaml", "last.pt", "best.pt", "metrics.jsonl", "curves.png")  # what a run folder holds


@dataclass(frozen=True)
class Ranks:
    """This process's place in a (possibly single-process) distributed run."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> Ranks:
    """Join the process group ``torchrun`` describes in the environment (gloo on CPU, NCCL on GPU).

    Launched by ``torchrun`` (``RANK`` set) the group is joined even with one process, so a one-GPU run takes
    the same DistributedDataParallel path as a cluster; a plain ``asd-se train`` runs without one.
    """
    if "RANK" not in os.environ:
        return Ranks()
    cuda = device.type == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def training_loss(output, labels: torch.Tensor, aux_weight: float, se_sparsity: float = 0.0) -> torch.Tensor:
    """BCE of the AV head plus ``aux_weight`` × (BCE of the audio-only head + BCE of the visual-only head), over
    the frames with a label (NaN: context only, ``data.LiveWindows``), plus ``se_sparsity`` × the mean of the SE
    vectors ``output.se_weights`` (``(B, C)`` or ``(B, T, C)``, from a pass with ``explain=True``)."""
    known = ~torch.isnan(labels)
    target = labels[known]

    def bce(logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(logits.float()[known], target)

    loss = bce(output.logits) + aux_weight * (bce(output.audio_logits) + bce(output.visual_logits))
    return loss + se_sparsity * output.se_weights.float().mean() if se_sparsity else loss


def val_map_cell(record: dict) -> str | None:
    """An epoch's val mAP (audio-visual) in percent with its 95% interval where one was drawn, as reported:
    ``"96.68 [94.10, 98.20]"``; None where the epoch was not validated or its mAP is undefined."""
    if record.get("val_map") is None:
        return None
    low, high = record.get("val_map_low"), record.get("val_map_high")
    interval = f" [{100 * low:.2f}, {100 * high:.2f}]" if low is not None and high is not None else ""
    return f"{100 * record['val_map']:.2f}{interval}"


def _plot_curves(history: list[dict], path: Path) -> None:
    figure = new_figure(9, 3.5)
    loss_axes, map_axes = figure.subplots(1, 2)
    epochs = [h["epoch"] + 1 for h in history]
    loss_axes.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train loss (AV + aux)")
    loss_axes.set_xlabel("epoch")
    loss_axes.legend()
    for key, name in (("val_map", "audio-visual"), ("val_map_audio", "audio only"), ("val_map_visual", "visual only")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            map_axes.plot(epochs, [np.nan if v is None else 100 * v for v in values], marker="o", label=name)
    low, high = ([np.nan if h.get(k) is None else 100 * h[k] for h in history] for k in ("val_map_low", "val_map_high"))
    if not np.isnan(low).all():
        map_axes.fill_between(epochs, low, high, color="C0", alpha=0.2,
                              label="audio-visual, 95% interval (videos resampled)")
    map_axes.set_xlabel("epoch")
    map_axes.set_ylabel("val mAP (%)")
    map_axes.legend()
    save_figure(figure, path)


class Trainer:
    """Owns the model, optimizer, scheduler and run folder of one training run."""

    def __init__(self, config: Config, store_root: Path, run_dir: Path, resume: bool = False,
                 init: Path | None = None, force: bool = False, features: Path | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self._claim_run_dir(store_root, init, resume, force, features)
        train = config.train
        if train.threads:
            torch.set_num_threads(train.threads)
        keep_freed_memory()  # every step allocates and frees the same large buffers
        self.device = resolve_device(train.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.ranks = _init_distributed(self.device)
        self.store = TrackStore.open(store_root)
        self.store.require_crop(config.model.crop, "the model (model.crop)")
        self.train_tracks = self.store.tracks("train")
        self.val_tracks = self.store.tracks("val")
        if not self.train_tracks:
            raise StoreError(f"{store_root}: no training tracks (split 'train' is empty)")
        torch.manual_seed(train.seed)
        self.model = build_model(config.model).to(self.device)
        frozen = train.freeze == "encoders"
        if frozen and self.ranks.world > 1:
            raise InputError("train.freeze=encoders trains from cached features in one process; run it without "
                             "torchrun")
        for parameter in frozen_parameters(self.model) if frozen else []:
            parameter.requires_grad_(False)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=train.lr,
                                           weight_decay=train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.start_epoch, self.best_map, self.history = 0, -1.0, []
        if resume:
            self._resume()
        elif init is not None:
            self._initialise(Path(init))
        self.features = {}  # split -> SplitFeatures, with train.freeze=encoders
        for split, tracks in (("train", self.train_tracks), ("val", self.val_tracks)) if frozen else ():
            if tracks:
                self.features[split] = load_features(self.model, self.store, tracks,
                                                     Path(features or self.run_dir / "features"), self.device)
        self.network = (DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                if self.device.type == "cuda" else None)
                        if dist.is_initialized() else self.model)
        self.use_amp = train.amp and self.device.type == "cuda"

    def _claim_run_dir(self, store_root: Path, init: Path | None, resume: bool, force: bool,
                       features: Path | None) -> None:
        """Refuse, before any work, a run folder that would mix two trainings (it holds a run, and neither
        ``resume`` nor ``force`` was given), or whose files are inputs of this run; with ``force`` the earlier
        run's files are removed, so none of them (an old best.pt) survives beside the new run's."""
        earlier = [name for name in RUN_FILES if (self.run_dir / name).exists()]
        if resume and force:
            raise InputError("--resume continues a run, --force replaces it: give one of them")
        if earlier and not (resume or force):
            raise InputError(f"{self.run_dir}: holds a run already ({', '.join(earlier)}); give --resume to "
                             f"continue it, --force to start over (its files are replaced), or another --out")
        if resume and "last.pt" not in earlier:
            raise InputError(f"{self.run_dir}: nothing to resume (no last.pt)")
        check_outputs([store_root, init], [self.run_dir / name for name in RUN_FILES], [self.run_dir, features])
        if force and int(os.environ.get("RANK", "0")) == 0:
            for name in earlier:
                (self.run_dir / name).unlink()

    def _lr_factor(self, epoch: int) -> float:
        """One warm-up epoch, then cosine decay to 5%."""
        epochs = self.config.train.epochs
        if epoch == 0:
            return 0.3
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / max(1, epochs - 1)))

    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        payload = load_checkpoint(path)
        mismatch = model_mismatch(checkpoint_config(payload, path).to_dict()["model"],
                                  self.config.to_dict()["model"])
        if mismatch:
            raise CheckpointError(f"{path}: cannot resume, {mismatch}")
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng"]["torch"])
        self.start_epoch, self.best_map = payload["epoch"] + 1, payload["best_map"]
        self.history = [json.loads(line) for line in (self.run_dir / "metrics.jsonl").read_text().splitlines()
                        if line.strip() and json.loads(line)["epoch"] <= payload["epoch"]]
        log.info("resumed from %s after epoch %d (best val mAP %.4f)", path, payload["epoch"], self.best_map)

    def _initialise(self, path: Path) -> None:
        """Start from the weights of ``path`` (an imported or any asd-se checkpoint) of the same architecture;
        an SE block the checkpoint lacks is inserted at its identity start, so step 0 computes what it did."""
        saved = checkpoint_config(load_checkpoint(path), path).model
        wanted = self.config.model
        free = ("se", "se_identity") + (() if saved.se else ("se_squeeze", "se_reduction"))  # a block it lacks: any
        architecture = {k: v for k, v in self.config.to_dict()["model"].items() if k not in free}
        mismatch = model_mismatch({k: v for k, v in Config(model=saved).to_dict()["model"].items()
                                   if k in architecture}, architecture)
        if mismatch:
            raise CheckpointError(f"{path}: cannot initialise this model from it: {mismatch}")
        if wanted.se and not saved.se and not wanted.se_identity:
            raise CheckpointError(f"{path}: has no SE block; inserting one needs model.se_identity=true, so the "
                                  f"block starts as the identity and the model as the checkpoint's")
        missing, unexpected = self.model.load_state_dict(load_checkpoint(path)["model"], strict=False)
        if [k for k in missing if not k.startswith("se.")] or [k for k in unexpected if not k.startswith("se.")]:
            raise CheckpointError(f"{path}: weights do not fit ({missing[:3]} missing, {unexpected[:3]} unexpected)")
        log.info("initialised from %s%s", path, " with an SE block inserted (identity start)" if missing else "")

    def loader(self, epoch: int) -> DataLoader:
        """This rank's batches of ``epoch``: faces, audio, labels (see BatchDataset), a function of (seed, epoch,
        rank) only."""
        train = self.config.train
        batches = make_batches(self.train_tracks, train.frame_budget, train.max_frames, train.min_frames,
                               epoch_rng(train.seed, epoch))
        per_rank = len(batches) // self.ranks.world  # equal step counts, so no rank waits forever
        mine = batches[self.ranks.rank::self.ranks.world][:per_rank]
        live = LiveWindows(train.live_windows, train.live_future)
        if self.features:
            dataset = FeatureBatchDataset(self.features["train"], mine, train.voice_swap, train.seed, epoch,
                                          self.ranks.rank, live)
        else:
            dataset = BatchDataset(self.store, self.train_tracks, mine, train.augment, train.seed, epoch,
                                   self.ranks.rank, live)
        return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=self.loader_workers(),
                          pin_memory=self.device.type == "cuda")

    def loader_workers(self) -> int:
        """The configured loader processes, or with -1: none on the CPU (training uses every core) and, on a
        GPU, up to 10 of this process's share of the cores (in-process loading fed an H100 only 1.1× what it
        trained)."""
        workers = self.config.train.loader_workers
        if workers >= 0:
            return workers
        if self.device.type != "cuda":
            return 0
        share = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        return max(0, min(10, share - 1))

    def _train_epoch(self, epoch: int) -> dict:
        train = self.config.train
        torch.manual_seed(train.seed * 1000 + epoch)  # dropout etc.: a function of the epoch, resume-exact
        self.network.train()
        loader = self.loader(epoch)
        total_loss = frames = labelled = 0.0
        started = time.perf_counter()
        bar = Progress(f"epoch {epoch + 1}/{train.epochs}", "batch", len(loader), self.ranks.main)
        for *inputs, labels in loader:  # faces and audio, or (frozen encoders) their features
            bar.update()
            inputs, labels = [t.to(self.device, non_blocking=True) for t in inputs], labels.to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
                explain = train.se_sparsity > 0  # the pass returns its SE vectors
                output = (self.model.decide_pooled(*inputs, explain=explain) if self.features else
                          self.network(*inputs, explain=explain))
            loss = training_loss(output, labels, train.aux_weight, train.se_sparsity)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss.item()} in epoch {epoch + 1}; stopped. The last good "
                                       f"checkpoint is {self.run_dir / 'last.pt'} — lower train.lr and --resume")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), train.grad_clip)
            self.optimizer.step()
            known = int((~torch.isnan(labels)).sum())  # live windows' context frames carry no loss
            total_loss += loss.item() * known
            labelled += known
            frames += labels.numel()
            bar.set_postfix(loss=f"{total_loss / labelled:.3f}",
                            fps=f"{frames * self.ranks.world / (time.perf_counter() - started):.0f}")
        bar.close()
        self.scheduler.step()
        seconds = time.perf_counter() - started
        return {"epoch": epoch, "train_loss": total_loss / max(labelled, 1), "train_frames": int(frames),
                "train_seconds": round(seconds, 2), "train_fps": round(frames * self.ranks.world / seconds, 1),
                "lr": self.optimizer.param_groups[0]["lr"]}

    def _validate(self, record: dict) -> None:
        if not self.val_tracks:
            return
        if self.features:
            predictions = predict_features(self.model, self.features["val"])
        else:
            predictions = predict_split(self.model, self.store, "val", self.device, progress=False)
        result = summarise(predictions)
        record.update(val_map=result.map_av, val_map_audio=result.map_audio, val_map_visual=result.map_visual)
        if result.map_av is not None:
            bounds = overall_interval(predictions, self.config.train.bootstrap, self.config.train.seed)
            record.update({key: None if value is None else value / 100  # percent -> the fraction val_map is
                           for key, value in zip(("val_map_low", "val_map_high"), bounds)})
        if result.undefined:
            record["val_note"] = result.undefined

    def _save(self, epoch: int, record: dict) -> None:
        score = record.get("val_map")
        improved = score is not None and score > self.best_map
        self.best_map = score if improved else self.best_map
        payload = {"config": self.config.to_dict(), "model": self.model.state_dict(),
                   "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                   "epoch": epoch, "best_map": self.best_map, "rng": {"torch": torch.get_rng_state()},
                   "metrics": record}
        save_checkpoint(self.run_dir / "last.pt", payload)
        if improved:
            save_checkpoint(self.run_dir / "best.pt", payload)
        self.history.append(record)
        write_text_atomic(self.run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))
        _plot_curves(self.history, self.run_dir / "curves.png")

    def fit(self) -> list[dict]:
        """Train the remaining epochs; returns the metrics history."""
        if self.ranks.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            log.info("model %s: %d parameters on %s, %d process(es)", self.config.model.variant,
                     count_parameters(self.model), self.device, self.ranks.world)
        try:
            for epoch in range(self.start_epoch, self.config.train.epochs):
                record = self._train_epoch(epoch)
                if self.ranks.main:
                    self._validate(record)
                    self._save(epoch, record)
                    log.info("epoch %d: val mAP %s; %s", epoch + 1, val_map_cell(record) or "n/a",
                             {k: v for k, v in record.items() if k != "epoch"})
                if dist.is_initialized():
                    dist.barrier()
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
        return self.history
