#!/usr/bin/env python
"""Does the SE block rank the channels the decision uses? In the frozen encoders' features of a split, zero the
channels the SE map is made of (``explain.se_map.select_channels``, render's rule, on at least half the tracks),
then sets of the same size: at random, the lowest-SE ones, the most active ones; each time the mAP against the
intact model with a paired 95% interval (videos resampled). Zeroing a channel's pooled mean and max is zeroing its
maps (the SE block then squeezes a zero too). Also: how each channel's SE value ranks against its activity.
Prints JSON.

    python scripts/bench_se_channels.py RUN/last.pt --data STORE --features DIR [--split val] [--draws 5]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch

from asd_se.core.devices import resolve_device
from asd_se.explain.se_map import ChannelSelection, select_channels
from asd_se.explain_eval.sanity import spearman
from asd_se.models.loading import load_model
from asd_se.scoring.engine import WINDOW_FRAMES
from asd_se.training.breakdowns import map_difference
from asd_se.training.features import SplitFeatures, load_features, predict_features
from data_prep.store import TrackStore


def se_vectors(model: torch.nn.Module, features: SplitFeatures, window: int) -> np.ndarray:
    """``(tracks, C)``: each track's SE vector from its first ``window`` frames (one scoring window; a
    frame-squeeze block's vectors averaged over them)."""
    vectors = []
    with torch.no_grad():
        for i, meta in enumerate(features.metas):
            means = torch.from_numpy(features.window(i, 0, min(window, meta.frames))[0][None, ..., 0])  # (1, C, L)
            weights = model.se.weigh(means)[0]
            vectors.append((weights if weights.dim() == 1 else weights.mean(0)).numpy())
    return np.stack(vectors)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two ``(C,)`` vectors (``explain.sanity.spearman``, as one 'map' each)."""
    return float(spearman(torch.from_numpy(a)[None], torch.from_numpy(b)[None])[0])


def without(features: SplitFeatures, channels: np.ndarray) -> SplitFeatures:
    """``features`` with ``channels`` zeroed (a copy)."""
    ablated = copy.copy(features)
    ablated.pooled = features.pooled.copy()
    ablated.pooled[:, channels, :] = 0
    return ablated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a model with an SE block (checkpoint or shipped name)")
    parser.add_argument("--data", type=Path, required=True, help="track store")
    parser.add_argument("--features", type=Path, required=True, metavar="DIR", help="frozen-encoder features cache")
    parser.add_argument("--split", default="val")
    parser.add_argument("--draws", type=int, default=5, help="random channel sets")
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    device = resolve_device("cpu")
    model, _ = load_model(args.checkpoint, device)
    if model.se is None:
        parser.error(f"{args.checkpoint}: no SE block")
    if model.se.untrained:
        parser.error(f"{args.checkpoint}: its SE block is at its identity start (every channel alike)")
    store = TrackStore.open(args.data)
    features = load_features(model, store, store.tracks(args.split), args.features, device)
    weights = se_vectors(model, features, WINDOW_FRAMES)
    selected = select_channels(torch.from_numpy(weights), ChannelSelection()).numpy()  # render's rule, per track
    top = np.flatnonzero(selected.mean(0) >= 0.5)
    k = len(top)
    rng = np.random.default_rng(0)
    activity = features.pooled.mean(0)  # (C, 2) each channel's spatial mean and max, averaged over the frames
    sets = {"the SE rule's": top, "lowest SE": np.argsort(weights.mean(0))[:k],
            "most active": np.argsort(activity[:, 0])[-k:],
            **{f"random {i}": rng.choice(weights.shape[1], k, replace=False) for i in range(args.draws)}}
    intact = predict_features(model, features)
    result = {"checkpoint": args.checkpoint, "split": args.split, "channels": int(weights.shape[1]),
              "selected": top.tolist(),
              "se_spread_across_tracks": round(float(weights.std(0).mean()), 4),
              "se_spread_across_channels": round(float(weights.mean(0).std()), 4),
              "se_vs_activation_rank_correlation": {  # each channel's SE value against its mean spatial mean / max
                  kind: round(rank_correlation(weights.mean(0), activity[:, i]), 3)
                  for i, kind in enumerate(("mean", "max"))}, "zeroed": {}}
    for name, channels in sets.items():
        difference = map_difference(predict_features(model, without(features, channels)), intact, args.bootstrap)
        result["zeroed"][name] = {"channels": sorted(int(c) for c in channels), "map_change": round(difference.map, 2),
                                  "interval": [round(difference.low, 2), round(difference.high, 2)]}
        print(json.dumps({name: result["zeroed"][name]["map_change"]}), flush=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
