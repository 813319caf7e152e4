#!/usr/bin/env python
"""Write the file a fine-tuned shipped model is made of (``asd_se/weights/asd-se/NAME.pt``): the tensors a run
changed from the shipped published model it started from (``--init``: with ``train.freeze: encoders`` the SE block
and everything after the encoders; with nothing frozen every layer), with the run's config, the data it learned
from (the talkset manifest's splits, counts and licence) and the measured figures. Refuses a run of another
architecture, and a frozen-encoder run whose encoders differ from the base's (it was not trained from that base).

    python scripts/ship_model.py RUN/last.pt --base lrasd-talkset-se --manifest SET/manifest.json \\
        --figures figures.json -o asd_se/weights/asd-se/lrasd-vasp-se.pt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from asd_se.models.checkpoint import model_mismatch, save_checkpoint

from asd_se.models.loading import load_checkpoint
from asd_se.training.features import FROZEN


def data_summary(manifest_path: Path) -> dict:
    """What a talkset run learned from: identities per split, videos, face-frames per kind, licence."""
    manifest = json.loads(manifest_path.read_text())
    identities: dict[str, list[str]] = {}
    for identity, split in sorted(manifest["splits"].items()):
        identities.setdefault(split, []).append(identity)
    return {"set": "asd-se talkset", "manifest_sha256": hashlib.sha256(manifest_path.read_bytes()).hexdigest(),
            "identities": identities, "videos": manifest["videos"], "face_frames": manifest["face_frames"],
            "clips": len(manifest["sources"]), "skipped": len(manifest["skipped"]),
            "clip_licence": manifest["settings"]["licence"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run's checkpoint (RUN/last.pt)")
    parser.add_argument("--base", required=True, help="the shipped model the run started from (--init)")
    parser.add_argument("--manifest", type=Path, required=True, help="SET/manifest.json of the talkset trained on")
    parser.add_argument("--figures", type=Path, required=True, help="JSON of what was measured on the model")
    parser.add_argument("--origin", default="VASP train/ (github.com/Lukeli0425/VASP), asd-se talkset")
    parser.add_argument("--licence", default="MIT, as the base model's")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    run, base = load_checkpoint(args.run), load_checkpoint(args.base)
    mismatch = model_mismatch(base["config"]["model"], run["config"]["model"])
    if mismatch:
        sys.exit(f"{args.run}: not a model of {args.base}'s architecture: {mismatch}")
    trained = {name: tensor for name, tensor in run["model"].items()
               if name not in base["model"] or not torch.equal(tensor, base["model"][name])}
    frozen = run["config"]["train"]["freeze"] == "encoders"
    moved = [name for name in trained if name.startswith(FROZEN)]
    if frozen and moved:
        sys.exit(f"{args.run}: its encoders differ from {args.base}'s ({len(moved)} tensors, e.g. {moved[0]}): "
                 f"not a train.freeze=encoders run from it")
    data = data_summary(args.manifest)
    layers = ("train.freeze=encoders (the SE block and everything after the encoders)" if frozen else
              "nothing frozen (the encoders, the SE block and everything after them)")
    source = {"trained_by": f"asd-se train, {layers}",
              "init": args.base, "trained_on_data": args.origin, "data": data,
              "run_metrics": run.get("metrics", {}), "figures": json.loads(args.figures.read_text()),
              "licence": f"weights: {args.licence}; the clips trained on are not shipped "
                         f"({data['clip_licence']})"}
    save_checkpoint(args.out, {"config": run["config"], "model": trained, "source": source})
    print(f"{args.out}: {sum(t.numel() for t in trained.values())} trained parameters and buffers "
          f"({len(trained)} tensors) on top of {args.base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
