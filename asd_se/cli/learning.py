"""``asd-se`` commands: train, evaluate, explain-eval.

Each handler (``cmd_*``) sits beside the parser that declares its options."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asd_se.cli.common import CHECKPOINT_HELP
from asd_se.core.errors import EXIT_OK, EXIT_UNDEFINED
from asd_se.core.fsio import check_outputs
from asd_se.core.options import NOT_NEGATIVE, ranged

log = logging.getLogger("asd_se")


def cmd_train(args: argparse.Namespace) -> int:
    from asd_se.models.config import load_config
    from asd_se.training.loop import Trainer

    if args.resume and args.config is None and (args.out / "config.yaml").exists():
        args.config = args.out / "config.yaml"
    base = None
    if args.init is not None and args.config is None:  # the model is the checkpoint's, unless --set changes it
        from asd_se.models.checkpoint import checkpoint_config
        from asd_se.models.config import Config
        from asd_se.models.loading import load_checkpoint

        base = Config(model=checkpoint_config(load_checkpoint(args.init), args.init).model)
    config = load_config(args.config, args.set, base)
    history = Trainer(config, args.data, args.out, resume=args.resume, init=args.init, force=args.force,
                      features=args.features).fit()
    if history:
        print(f"run folder: {args.out} (last.pt, best.pt, metrics.jsonl, curves.png); last epoch: {history[-1]}")
    return EXIT_OK


def train_parser(commands) -> None:
    train = commands.add_parser("train", help="train the model on a track store",
                                description="Train on STORE's train split, validate on its val split each epoch. "
                                            "Multi-GPU/multi-node: torchrun --nproc-per-node N -m asd_se train ...")
    train.add_argument("--data", type=Path, required=True, help="track store made by asd-se prep")
    train.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, metrics, curves)")
    train.add_argument("--config", type=Path, help="YAML config (default: configs/light.yaml settings)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.epochs=5 --set model.se=false")
    train.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    train.add_argument("--force", action="store_true",
                       help="start over in a run folder that holds a run already (its files are replaced)")
    train.add_argument("--init", type=Path, metavar="CKPT|MODEL",
                       help="fine-tune from this checkpoint (e.g. an imported Light-ASD one); its model settings "
                            "are the defaults; --set model.se=true inserts an SE block that starts as the identity")
    train.add_argument("--features", type=Path, metavar="DIR",
                       help="with --set train.freeze=encoders: where the frozen encoders' features are kept, one "
                            "folder per encoder weights and store (default: OUT/features; share it between runs)")
    train.set_defaults(run=cmd_train)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asd_se.core.ava import write_predictions
    from asd_se.core.devices import resolve_device
    from asd_se.core.fsio import write_json_atomic
    from asd_se.core.heap import keep_freed_memory
    from asd_se.models.loading import load_model
    from asd_se.training.breakdowns import as_json
    from asd_se.training.evaluate import face_widths, predict_split, read_categories, summarise
    from data_prep.store import TrackStore

    device = resolve_device(args.device)
    keep_freed_memory()  # the encoders' large buffers, allocated again for every window
    groups = args.predictions.with_suffix(".breakdowns.json") if args.predictions else None
    check_outputs([args.checkpoint, args.data, args.categories], [args.predictions, groups])
    model, config = load_model(args.checkpoint, device)
    store = TrackStore.open(args.data)
    store.require_crop(config.model.crop, str(args.checkpoint))
    predictions = predict_split(model, store, args.split, device, durations=tuple(args.durations))
    result = summarise(predictions, read_categories(args.categories) if args.categories else None,
                       face_widths(store, args.split), args.bootstrap, args.seed)
    if args.predictions:
        write_predictions(args.predictions, predictions)
        print(f"predictions (official AVA format): {args.predictions}")
        write_json_atomic(groups, as_json(result.groups, args.bootstrap, args.seed))
        print(f"mAP by group: {groups}")
    print(result.render())
    return EXIT_OK if result.undefined is None else EXIT_UNDEFINED


def evaluate_parser(commands) -> None:
    from asd_se.scoring.engine import DURATION

    evaluate = commands.add_parser("evaluate", help="score a split, write predictions, print mAP",
                                   description="mAP with the official AVA-ActiveSpeaker semantics. Exit code 4: "
                                               "the split has no positives, so mAP is undefined.")
    evaluate.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    evaluate.add_argument("--data", type=Path, required=True, help="track store")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--predictions", type=Path, help="write predictions CSV (official format) here")
    evaluate.add_argument("--categories", type=Path,
                          help="CSV video_id,category (WASD) or video_id,entity_id,category (asd-se talkset): mAP "
                               "by category, and each category's negatives against every positive")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--durations", type=ranged(float, DURATION), nargs="+", default=[], metavar="SECONDS",
                          help="score each window as the mean over pieces of these lengths (Light-ASD's inference "
                               "averages 1 2 3 4 5 6); default: whole windows")
    evaluate.add_argument("--bootstrap", type=ranged(int, NOT_NEGATIVE), default=1000, metavar="N",
                          help="draws (of whole videos) for each mAP's 95%% interval; 0: no intervals (default 1000)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    evaluate.set_defaults(run=cmd_evaluate)


def cmd_explain_eval(args: argparse.Namespace) -> int:
    from asd_se.core.devices import resolve_device
    from asd_se.core.options import settings_from
    from asd_se.explain_eval.evaluation import ExplainEvalConfig, evaluate_explainers
    from asd_se.explain_eval.mouths import load_mouth_boxes
    from asd_se.explain_eval.report import NO_MOUTH_BOXES, report_paths, write_explain_report
    from asd_se.models.loading import load_model
    from data_prep.store import TrackStore

    config = settings_from(ExplainEvalConfig, args)
    device = resolve_device(config.device)
    check_outputs([args.checkpoint, args.data, args.mouth_boxes], report_paths(args.out).values(), [args.out])
    store = TrackStore.open(args.data)
    mouths = load_mouth_boxes(store, config.split, args.mouth_boxes)
    for problem in mouths.problems:
        log.warning("%s", problem)
    if mouths.boxes:
        log.info("mouth boxes: %s", ", ".join(map(str, mouths.sources)))
    else:
        log.warning("%s", NO_MOUTH_BOXES)
    model, model_config = load_model(args.checkpoint, device)
    store.require_crop(model_config.model.crop, str(args.checkpoint))
    paths = write_explain_report(args.out, evaluate_explainers(model, store, mouths, config, device))
    print(paths["markdown"].read_text())
    for name, path in paths.items():
        print(f"  {name}: {path}")
    return EXIT_OK


def explain_eval_parser(commands) -> None:
    from asd_se.core.options import add_options
    from asd_se.explain_eval.evaluation import ExplainEvalConfig

    explain_eval = commands.add_parser(
        "explain-eval", help="SE maps vs Grad-CAM, Grad-CAM++, Eigen-CAM: localisation, faithfulness, speed",
        description="Run each explainer on the same windows of a split and measure the pointing game and mouth "
                    "energy (where mouth boxes exist), deletion/insertion AUC, Average Drop/Increase and time per "
                    "frame. Writes OUT/explain_eval.{md,json}, OUT/se_distribution.png and OUT/grid.png.")
    explain_eval.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    explain_eval.add_argument("--data", type=Path, required=True, help="track store")
    explain_eval.add_argument("--mouth-boxes", type=Path,
                              help="CSV video_id,frame_timestamp,entity_id,x1,y1,x2,y2 (normalised); default: "
                                   "the sidecars of the store's annotation CSVs (ROOT/mouth_boxes/<split>.csv, "
                                   "as asd-se synth writes them)")
    explain_eval.add_argument("--out", type=Path, required=True, help="output folder")
    add_options(explain_eval, ExplainEvalConfig)
    explain_eval.set_defaults(run=cmd_explain_eval)
