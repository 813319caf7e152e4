#!/usr/bin/env python
"""torch vs onnxruntime on the CPU: one scoring window (10 s, 250 frames by default) through the scoring engine's
``score_clip`` with the SE map, per model, the same inputs; and the largest per-frame probability difference.

Prints JSON. Each model is exported once (``asd-se export onnx``'s ``export_onnx``) into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from asd_se.explain import build_explainer
from asd_se.models.loading import load_model
from asd_se.models.onnx_model import OnnxAsdModel, export_onnx, random_clip
from asd_se.scoring.engine import score_clip


def seconds(model, faces, audio, explainer, repeats: int) -> tuple[float, object]:
    """Median seconds of ``score_clip`` over ``repeats`` runs (after one warm-up), and the last scores."""
    scores, times = score_clip(model, faces, audio, [explainer]), []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = score_clip(model, faces, audio, [explainer])
        times.append(time.perf_counter() - start)
    return float(np.median(times)), scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["lrasd-vasp-se", "lightasd-ava-se"])
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                          "threads": args.threads, "torch": torch.__version__},
              "frames": args.frames, "models": {}}
    explainer = build_explainer("se")
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            model, config = load_model(name, torch.device("cpu"))
            parity = export_onnx(model, config, name, Path(scratch) / f"{name}.onnx")
            exported = OnnxAsdModel(Path(scratch) / f"{name}.onnx", threads=args.threads)
            faces, audio = random_clip(model, args.frames, seed=1)
            torch_s, ours = seconds(model, faces, audio, explainer, args.repeats)
            onnx_s, theirs = seconds(exported, faces, audio, explainer, args.repeats)
            report["models"][name] = {
                "torch_ms_per_frame": 1000 * torch_s / args.frames,
                "onnxruntime_ms_per_frame": 1000 * onnx_s / args.frames,
                "onnxruntime_speedup": torch_s / onnx_s,
                "max_probability_difference": float((ours.probs - theirs.probs).abs().max()),
                "export_parity": parity.max_difference}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
