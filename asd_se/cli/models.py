"""``asd-se`` commands: the shipped and imported models: import, export onnx, models; and the demo.

Each handler (``cmd_*``) sits beside the parser that declares its options."""

from __future__ import annotations

import argparse
from pathlib import Path

from asd_se.core.errors import EXIT_OK
from asd_se.core.fsio import check_outputs
from asd_se.core.options import AT_LEAST_ONE, ranged


def cmd_import(args: argparse.Namespace) -> int:
    from asd_se.models.published import import_published
    from asd_se.models.zoo import FAMILIES

    check_outputs([args.weights], [args.out])
    family = FAMILIES[args.kind]
    config = import_published(args.weights, args.out, family, se=args.se)
    print(f"{args.out}: {family.name} ({args.weights.name}) as an asd-se checkpoint; "
          f"front end {config.model.frontend}, "
          f"crop {config.model.crop}, SE block {'inserted (identity start)' if config.model.se else 'none'}")
    print(f"  render a video: asd-se render VIDEO --checkpoint {args.out}")
    print(f"  prepare a store for it: asd-se prep ... --checkpoint {args.out}")
    return EXIT_OK


def import_parser(commands) -> None:
    imports = commands.add_parser("import", help="published weights -> an asd-se checkpoint",
                                  description="Turn Light-ASD's or LR-ASD's published weights (pretrain_AVA*.model, "
                                              "finetuning_TalkSet.model) into an asd-se checkpoint that render, "
                                              "evaluate and train --init use (the four are shipped already: "
                                              "asd-se models). Nothing is written if the file is not such "
                                              "weights.")
    imports.add_argument("kind", choices=("lightasd", "lrasd"), help="whose weights: Light-ASD's or LR-ASD's")
    imports.add_argument("weights", type=Path, help="the published weight file")
    imports.add_argument("-o", "--out", type=Path, required=True, help="the asd-se checkpoint to write")
    imports.add_argument("--se", action="store_true",
                         help="insert the SE block (identity start: outputs unchanged until fine-tuned)")
    imports.set_defaults(run=cmd_import)


def cmd_export(args: argparse.Namespace) -> int:
    import torch

    from asd_se.models.loading import load_model
    from asd_se.models.onnx_model import OPSET, export_onnx

    check_outputs([args.checkpoint], [args.out])
    model, config = load_model(args.checkpoint, torch.device("cpu"))
    parity = export_onnx(model, config, str(args.checkpoint), args.out)
    lengths = ", ".join(f"{frames} frames {difference:.1e}" for frames, difference in parity.max_difference.items())
    print(f"{args.out}: {args.checkpoint} as ONNX (opset {OPSET}, any number of frames); onnxruntime vs torch, "
          f"largest per-frame probability difference: {lengths}")
    print(f"  render with it: asd-se render VIDEO --runtime onnx --checkpoint {args.out}")
    return EXIT_OK


def export_parser(commands) -> None:
    export = commands.add_parser("export", help="a checkpoint as ONNX, checked against torch by onnxruntime",
                                 description="Write a model as ONNX (opset 17, any clip length): faces and the "
                                             "audio front end's MFCC in; the three heads, the SE vector and the "
                                             "explained maps out — all an SE map needs. onnxruntime runs it at "
                                             "two lengths on export; nothing is written unless every per-frame "
                                             "probability is within 1e-4 of torch's. The MFCC front end stays "
                                             "in torch; gradient explainers need torch.")
    export.add_argument("format", choices=("onnx",), help="the format (onnx)")
    export.add_argument("checkpoint", type=Path, help="an asd-se checkpoint, or a shipped model's name")
    export.add_argument("-o", "--out", type=Path, required=True, help="the .onnx file to write")
    export.set_defaults(run=cmd_export)


def cmd_models(args: argparse.Namespace) -> int:
    from asd_se.core.fsio import standard_output, stream_errors
    from asd_se.models.zoo import models_table

    out = standard_output()
    with stream_errors("standard output", out):
        out.write(models_table())
        out.flush()
    return EXIT_OK


def models_parser(commands) -> None:
    models = commands.add_parser("models", help="the models asd-se ships (usable by name as --checkpoint)",
                                 description="Every model inside the package: name, family, training data, "
                                             "licence, source and the sha256 of its weight file, and what was "
                                             "measured on it. Nothing is downloaded.")
    models.set_defaults(run=cmd_models)


def cmd_demo(args: argparse.Namespace) -> int:
    from asd_se.demo import run_demo

    check_outputs([], folders=[args.out])
    for line in run_demo(args.out, workers=args.workers, epochs=args.epochs):
        print(line)
    return EXIT_OK


def demo_parser(commands) -> None:
    demo = commands.add_parser("demo", help="the whole pipeline on synthetic data, no downloads")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    demo.add_argument("--workers", type=ranged(int, AT_LEAST_ONE), default=2)
    demo.add_argument("--epochs", type=ranged(int, AT_LEAST_ONE), default=6,
                      help="training epochs (default 6, about 7 min on 2 cores)")
    demo.set_defaults(run=cmd_demo)
