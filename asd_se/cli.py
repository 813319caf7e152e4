"""The ``asd-se`` command: parses arguments, sets up logging, calls the layers. No logic of its own."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from asd_se.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_UNDEFINED, EXIT_USAGE
from asd_se.core.fsio import check_outputs
from asd_se.core.options import AT_LEAST_ONE, NOT_NEGATIVE, Range, ranged

log = logging.getLogger("asd_se")

CHECKPOINT_HELP = "an asd-se checkpoint (best.pt / last.pt of asd-se train) or a shipped model's name (asd-se models)"


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants I/N, e.g. 0/4, not {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"--shard {text}: need 0 <= I < N")
    return index, count


FRAME_SIDE = Range(16, 3840)  # synthetic frames: a face must fit, and the encoders take up to 4K


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size wants WIDTHxHEIGHT, e.g. 1280x720, not {text!r}") from None
    if not (FRAME_SIDE.contains(width) and FRAME_SIDE.contains(height)):
        raise argparse.ArgumentTypeError(f"--size {text}: each side must be {FRAME_SIDE}")
    return width, height


def cmd_synth(args: argparse.Namespace) -> int:
    from asd_se.core.ava import LABELS
    from asd_se.core.writer import Encoding
    from data_prep.synth.dataset import Packaging, SynthConfig, make_dataset

    packaging = Packaging(Encoding(args.container, args.codec, args.audio), args.channels, args.lead, args.tail,
                          args.start_time)
    try:
        packaging.check()
    except ValueError as err:
        raise SystemExit(f"asd-se synth: {err}") from None
    config = SynthConfig(videos=args.videos, minutes=args.minutes, seed=args.seed, size=args.size, fps=args.fps,
                         packaging=packaging, difficulty=args.difficulty)
    check_outputs([], folders=[args.out_dir])
    counts = make_dataset(args.out_dir, config, workers=args.workers)
    print(f"synthetic AVA-format dataset in {args.out_dir}:")
    for split in ("train", "val"):
        labels = ", ".join(f"{label} {counts[f'{split}_{label}']}" for label in LABELS)
        print(f"  {split}: {counts[f'{split}_videos']} videos, {counts[f'{split}_rows']} rows ({labels})")
    return EXIT_OK


def cmd_prep(args: argparse.Namespace) -> int:
    from asd_se.core.annotations import require_annotations
    from data_prep.prep import PrepConfig, dataset_layout, prepare
    from data_prep.store import StoreSettings

    annotations, videos = (args.annotations, args.videos)
    if args.root is not None:
        default_annotations, default_videos = dataset_layout(args.dataset, args.root)
        annotations, videos = annotations or default_annotations, videos or default_videos
    if not annotations or videos is None:
        raise SystemExit("asd-se prep: give --annotations and --videos, or --root with --dataset")
    crop = args.crop
    if args.checkpoint is not None:  # the crops the model was trained on
        from asd_se.models.checkpoint import checkpoint_config
        from asd_se.models.loading import load_checkpoint

        crop = checkpoint_config(load_checkpoint(args.checkpoint), args.checkpoint).model.crop
    if args.out is None and not args.check:
        raise SystemExit("asd-se prep: give --out STORE (or --check for the pre-flight only)")
    config = PrepConfig(tuple(annotations), videos, args.out or Path("."), args.workers, args.shard,
                        StoreSettings(crop=crop), seek=not args.no_seek)
    csvs = require_annotations(config.annotations)
    if not args.check:
        check_outputs([*csvs, videos, args.checkpoint], folders=[args.out])
    if args.check:
        from data_prep.check import check

        report = check(config)
        print(report.render())
        return report.exit_code
    summary = prepare(config)
    print(summary.render())
    if args.shard[1] > 1:
        print(f"shard {args.shard[0]}/{args.shard[1]} done; build the index with a run without --shard, "
              f"or `asd-se merge --out STORE SHARD_STORES...`")
    return summary.exit_code


def cmd_talkset(args: argparse.Namespace) -> int:
    from asd_se.core.options import settings_from
    from data_prep.talkset.build import TalksetSettings, build

    check_outputs([args.clips], folders=[args.out])
    summary = build(args.clips, args.out, settings_from(TalksetSettings, args))
    print(f"AVA-format dataset of real talking faces in {args.out}:")
    print(summary.render())
    print(f"next: asd-se prep --dataset talkset --root {args.out} --out STORE")
    return summary.exit_code


def cmd_download(args: argparse.Namespace) -> int:
    from data_prep.ava_download import AvaSources, DownloadConfig, download_ava

    splits = tuple(s for s in args.splits.split(",") if s)
    if not splits or set(splits) - {"train", "val"}:
        raise SystemExit(f"asd-se download: --splits takes train and/or val, not {args.splits!r}")
    sources = AvaSources.mirror(args.mirror) if args.mirror else AvaSources()
    report = download_ava(DownloadConfig(args.root, splits, args.workers, args.dry_run, sources))
    print(report.render())
    if not args.dry_run and not report.failed:
        print(f"next: asd-se prep --check --dataset ava --root {args.root}")
    return report.exit_code


def cmd_merge(args: argparse.Namespace) -> int:
    from data_prep.prep import merge

    check_outputs(args.stores, folders=[args.out])
    print(f"{args.out}: index of {merge(args.out, args.stores)} tracks")
    return EXIT_OK


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


def cmd_render(args: argparse.Namespace) -> int:
    from asd_se.core.options import settings_from
    from asd_se.render.pipeline import RenderSettings, render_video

    result = render_video(args.video, args.checkpoint, args.out, args.annotations,
                          settings_from(RenderSettings, args))
    print(f"rendered {result.frames} frames ({result.duration:.1f} s of video) with {result.tracks} face tracks "
          f"in {result.seconds:.1f} s ({result.duration / max(result.seconds, 1e-9):.2f}x real time)")
    for name, path in result.outputs.items():
        print(f"  {name}: {path}")
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    from asd_se.core.options import settings_from
    from asd_se.live.pipeline import LiveSettings, run_live

    result = run_live(args.source, args.checkpoint, settings_from(LiveSettings, args), args.jsonl, args.out,
                      args.serve)
    latency = result.latency
    print(f"live: {result.reason}; {result.frames} frames read, {result.decided} decided, {result.dropped} dropped"
          + (f"; latency p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms" if latency.get("frames") else ""),
          file=sys.stderr)
    return {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED}.get(result.reason, EXIT_OK)


def cmd_review(args: argparse.Namespace) -> int:
    from asd_se.core.fsio import refuse_overwrite
    from asd_se.core.options import settings_from
    from asd_se.review.document import read_render
    from asd_se.review.page import write_review
    from asd_se.review.segments import SegmentSettings

    document = read_render(args.json)
    page = args.out or args.json.with_suffix(".html")
    check_outputs([args.json, *document.media], [page])
    refuse_overwrite(page, args.force)
    for note in write_review(document, page, settings_from(SegmentSettings, args, "segments-")):
        log.warning(note)
    print(f"review page: {page}")
    return EXIT_OK


def cmd_segments(args: argparse.Namespace) -> int:
    from asd_se.core.fsio import refuse_overwrite, standard_output, stream_errors, write_text_atomic
    from asd_se.core.options import settings_from
    from asd_se.review.document import read_render
    from asd_se.review.segments import SegmentSettings, document_segments, format_segments

    document = read_render(args.json)
    settings = settings_from(SegmentSettings, args, "segments-")
    text = format_segments(document_segments(document, settings), args.format, document.video_id, settings)
    if args.out is None:
        out = standard_output()
        with stream_errors("standard output", out):
            out.write(text)
            out.flush()
        return EXIT_OK
    check_outputs([args.json, *document.media], [args.out])
    refuse_overwrite(args.out, args.force)
    write_text_atomic(args.out, text)
    print(f"segments ({args.format}): {args.out}")
    return EXIT_OK


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


def cmd_models(args: argparse.Namespace) -> int:
    from asd_se.core.fsio import standard_output, stream_errors
    from asd_se.models.zoo import models_table

    out = standard_output()
    with stream_errors("standard output", out):
        out.write(models_table())
        out.flush()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from asd_se.demo import run_demo

    check_outputs([], folders=[args.out])
    for line in run_demo(args.out, workers=args.workers, epochs=args.epochs):
        print(line)
    return EXIT_OK


def _synth_parser(commands) -> None:
    from asd_se.core.writer import AUDIO_CODECS, CONTAINERS, VIDEO_CODECS

    synth = commands.add_parser("synth", help="write a synthetic AVA-format dataset (videos + CSVs)",
                                description="Write a synthetic dataset laid out like AVA-ActiveSpeaker: "
                                            "OUT_DIR/videos/*.mp4 (or .mkv/.webm), "
                                            "OUT_DIR/annotations/{train,val}.csv and the "
                                            "mouth boxes of every row in OUT_DIR/mouth_boxes/{train,val}.csv.")
    synth.add_argument("out_dir", type=Path)
    synth.add_argument("--videos", type=ranged(int, AT_LEAST_ONE), default=16, help="number of videos (default 16)")
    synth.add_argument("--minutes", type=ranged(float, Range(0.01, 600)), default=0.5,
                       help="length of EACH video in minutes (default 0.5)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=_size, default=None, help="fixed frame size WxH (default: varied sizes)")
    synth.add_argument("--fps", type=ranged(float, Range(1, 120)), default=None,
                       help="fixed frame rate (default: 10-30 fps, varied)")
    synth.add_argument("--workers", type=ranged(int, AT_LEAST_ONE), default=2, help="processes (default 2)")
    synth.add_argument("--difficulty", choices=("easy", "standard", "hard"), default="standard",
                       help="hard: small faces, hands and microphones over mouths, profiles, motion blur, low "
                            "light, heavy compression, lips out of sync, subtle speakers, laughter, music "
                            "(default standard; easy: no hard negatives)")
    files = synth.add_argument_group("how each video is stored (AVA's movies come in all of these)")
    files.add_argument("--container", choices=sorted(CONTAINERS), default="mp4")
    files.add_argument("--codec", choices=sorted(VIDEO_CODECS), default="h264", help="video codec")
    files.add_argument("--audio", choices=sorted(AUDIO_CODECS), default="aac", help="audio codec")
    files.add_argument("--channels", type=int, choices=(1, 2, 6), help="audio channels (default: 1 or 2, varied)")
    files.add_argument("--lead", type=ranged(float, NOT_NEGATIVE), default=0.0, metavar="S",
                       help="seconds of another, unannotated scene before the annotated clip (annotations shifted)")
    files.add_argument("--tail", type=ranged(float, NOT_NEGATIVE), default=0.0, metavar="S", help="... and after it")
    files.add_argument("--start-time", type=ranged(float, NOT_NEGATIVE), default=0.0, metavar="S",
                       help="the file's first timestamp (a container start time other than 0)")
    synth.set_defaults(run=cmd_synth)


def _talkset_parser(commands) -> None:
    from asd_se.core.options import add_options
    from data_prep.talkset.build import TalksetSettings

    talkset = commands.add_parser(
        "talkset", help="real talking-head clips (a folder per person) -> AVA-format dataset",
        description="Turn talking-head clips with their speakers' own voices (CLIPS/<person>/<clip>.mp4) into an "
                    "AVA-format dataset, TalkSet's way: each face with its own voice (speaking where a voice-"
                    "activity detector hears speech), under another person's voice, with its voice shifted by "
                    "1-2.5 s (never speaking), and 2-3 faces side by side with one voice kept; mouth boxes from a "
                    "face mesh; identity-disjoint train/val. Exit code 3: finished, but clips were skipped.")
    talkset.add_argument("clips", type=Path, help="folder of identity folders of clips")
    talkset.add_argument("--out", type=Path, required=True, help="dataset folder (created or resumed)")
    add_options(talkset, TalksetSettings)
    talkset.set_defaults(run=cmd_talkset)


def _download_parser(commands) -> None:
    download = commands.add_parser("download", help="fetch a dataset (AVA-ActiveSpeaker) into the prep layout",
                                   description="Fetch AVA-ActiveSpeaker's annotations, the AVA file list and the "
                                               "movies they name into ROOT/csv and ROOT/videos (the layout of "
                                               "`asd-se prep --dataset ava --root ROOT`). Resumable: a rerun "
                                               "fetches only what is missing and continues partial files. Exit "
                                               "code 3: some files failed (listed).")
    download.add_argument("dataset", choices=("ava",))
    download.add_argument("--root", type=Path, required=True, help="dataset root")
    download.add_argument("--splits", default="train,val", help="train and/or val (default train,val)")
    download.add_argument("--workers", type=ranged(int, AT_LEAST_ONE), default=4,
                          help="movies fetched at once (default 4)")
    download.add_argument("--dry-run", action="store_true",
                          help="write nothing: read the annotations and the list, ask each movie's size, print "
                               "the plan")
    download.add_argument("--mirror", metavar="URL",
                          help="fetch every file from URL/ instead (URL/<archive>, URL/<file list>, "
                               "URL/trainval/<movie>)")
    download.set_defaults(run=cmd_download)


def _prep_parsers(commands) -> None:
    from asd_se.core.crop import CROP_STYLES

    prep = commands.add_parser("prep", help="videos + AVA-format CSVs -> face-track store",
                               description="Decode each video once and store every annotated face track at "
                                           "25 fps. Exit code 3: finished, but rows or videos were skipped.")
    prep.add_argument("--annotations", type=Path, nargs="+", help="AVA-format CSV files or folders of them")
    prep.add_argument("--videos", type=Path, help="folder with <video_id>.{mp4,mkv,webm,avi,mov}")
    prep.add_argument("--out", type=Path, help="track store folder (created or resumed)")
    prep.add_argument("--check", action="store_true",
                      help="pre-flight only, writing nothing: probe every video (present, readable, streams, "
                           "codecs, duration covering the annotations), report every CSV problem, and estimate "
                           "prep's time and the store's size; exit codes as prep's")
    prep.add_argument("--dataset", choices=("ava", "wasd", "synth", "talkset"), default="ava",
                      help="folder layout used with --root (see README)")
    prep.add_argument("--root", type=Path, help="dataset root; fills in --annotations/--videos from the layout")
    prep.add_argument("--workers", type=ranged(int, AT_LEAST_ONE), default=1,
                      help="videos prepared in parallel processes")
    prep.add_argument("--shard", type=_shard, default=(0, 1), help="I/N: prepare every N-th video from the I-th")
    prep.add_argument("--no-seek", action="store_true",
                      help="decode every video from its first frame, not only its annotated span (a container "
                           "that cannot seek falls back to this by itself, with a note)")
    style = prep.add_mutually_exclusive_group()
    style.add_argument("--crop", choices=CROP_STYLES, default="asd-se",
                       help="THE crop's style, as the model to train or evaluate has it in model.crop (default "
                            "asd-se; imported Light-ASD checkpoints: lightasd)")
    style.add_argument("--checkpoint", type=Path, help="take the crop style from this checkpoint (or shipped model)")
    prep.set_defaults(run=cmd_prep)
    merge = commands.add_parser("merge", help="merge shard stores into one store and build its index")
    merge.add_argument("--out", type=Path, required=True)
    merge.add_argument("stores", type=Path, nargs="+")
    merge.set_defaults(run=cmd_merge)


def _train_parser(commands) -> None:
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


def _evaluate_parser(commands) -> None:
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


def _render_parser(commands) -> None:
    from asd_se.core.options import add_options
    from asd_se.models.zoo import DEFAULT_MODEL
    from asd_se.render.pipeline import RenderSettings

    render = commands.add_parser("render", help="annotated MP4: who speaks, and the SE heatmap of why",
                                 description="Find every face, score who speaks at 25 fps, and draw boxes coloured "
                                             "by speaking probability with the SE heatmap of each decision. Writes "
                                             "OUT.mp4 (H.264 + AAC, the input's timing and audio), OUT.json, "
                                             "OUT.csv (AVA prediction format), OUT.timeline.png, OUT.rttm (who "
                                             "speaks when) and OUT.html (the review page).")
    render.add_argument("video", type=Path, help="any video PyAV reads (mp4, mkv, avi, mov, webm)")
    render.add_argument("--checkpoint", type=Path, default=Path(DEFAULT_MODEL),
                        help=f"{CHECKPOINT_HELP} (default: {DEFAULT_MODEL}, shipped)")
    render.add_argument("-o", "--out", type=Path, help="output MP4 (default: VIDEO_STEM.asd.mp4 beside the input)")
    render.add_argument("--annotations", type=Path,
                        help="AVA-format CSV: use its boxes and entity ids instead of detection (rows of this "
                             "video by file stem, or all rows of a one-video CSV)")
    add_options(render, RenderSettings)
    render.set_defaults(run=cmd_render)


def _live_parser(commands) -> None:
    from asd_se.core.options import add_options
    from asd_se.live.pipeline import LiveSettings
    from asd_se.models.zoo import DEFAULT_MODEL

    live = commands.add_parser("live", help="who speaks, and why, while the video is still arriving",
                               description="One pass over a stream as it arrives: faces found and tracked, "
                                           "each decided once --lookahead seconds of its future have arrived, "
                                           "with its SE heatmap. Decisions leave in frame order as JSON lines "
                                           "(stdout, or --jsonl), optionally drawn into a fragmented MP4 "
                                           "(playable however the run ends) and a page served on 127.0.0.1.")
    live.add_argument("source", help="a video file, a URL PyAV opens (rtsp://, http://, udp://, ...), a camera "
                                     "(/dev/video0) or - (a stream on stdin, e.g. ffmpeg ... -f mpegts -)")
    live.add_argument("--checkpoint", type=Path, default=Path(DEFAULT_MODEL),
                      help=f"{CHECKPOINT_HELP} (default: {DEFAULT_MODEL}, shipped)")
    live.add_argument("--jsonl", type=Path, help="write the JSON lines here instead of stdout")
    live.add_argument("-o", "--out", type=Path, help="also write the annotated video here (fragmented MP4)")
    live.add_argument("--serve", type=ranged(int, Range(0, 65535)), metavar="PORT",
                      help="serve a live page on http://127.0.0.1:PORT/ (0: any free port, printed)")
    add_options(live, LiveSettings)
    live.set_defaults(run=cmd_live)


def _render_json_parser(commands, name: str, help: str, description: str, out_help: str, run):
    """A command reading a render's OUT.json: the JSON, ``-o``, ``--force`` and the segment settings."""
    from asd_se.core.options import add_options
    from asd_se.review.segments import SegmentSettings

    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("json", type=Path, help="OUT.json written by asd-se render")
    parser.add_argument("-o", "--out", type=Path, help=out_help)
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    add_options(parser, SegmentSettings, "segments-")
    parser.set_defaults(run=run)
    return parser


def _review_parsers(commands) -> None:
    from asd_se.review.segments import SEGMENT_FORMATS

    _render_json_parser(commands, "review", "a render's review page (one HTML file, opened from disk)",
                        "Write the review page of a render: the video with switchable boxes, labels and heatmaps, "
                        "a probability lane per track, ground truth and an error list when the render had "
                        "annotations. asd-se render writes it already (OUT.html); this makes it again, e.g. with "
                        "other segment settings.", "the page (default: OUT.html beside the JSON)", cmd_review)
    segments = _render_json_parser(
        commands, "segments", "who speaks when: a render's speaking segments (RTTM, CSV, JSON)",
        "Frame probabilities -> speaking segments per track: hysteresis (start at --segments-on, end below "
        "--segments-off), pauses shorter than --segments-min-gap filled, segments shorter than "
        "--segments-min-speech dropped. RTTM: one speaker per track.", "output file (default: standard output)",
        cmd_segments)
    segments.add_argument("--format", choices=SEGMENT_FORMATS, default="rttm")


def _explain_eval_parser(commands) -> None:
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


def _import_parser(commands) -> None:
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


def _export_parser(commands) -> None:
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


def _models_parser(commands) -> None:
    models = commands.add_parser("models", help="the models asd-se ships (usable by name as --checkpoint)",
                                 description="Every model inside the package: name, family, training data, "
                                             "licence, source and the sha256 of its weight file, and what was "
                                             "measured on it. Nothing is downloaded.")
    models.set_defaults(run=cmd_models)


def _demo_parser(commands) -> None:
    demo = commands.add_parser("demo", help="the whole pipeline on synthetic data, no downloads")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    demo.add_argument("--workers", type=ranged(int, AT_LEAST_ONE), default=2)
    demo.add_argument("--epochs", type=ranged(int, AT_LEAST_ONE), default=6,
                      help="training epochs (default 6, about 7 min on 2 cores)")
    demo.set_defaults(run=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asd-se", description="Active speaker detection that explains itself.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks of every error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_synth_parser, _talkset_parser, _download_parser, _prep_parsers, _train_parser, _evaluate_parser,
                _render_parser, _live_parser, _review_parsers, _explain_eval_parser, _import_parser, _export_parser,
                _models_parser, _demo_parser):
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``asd-se`` console script. The project's own errors (bad input, a setting that
    cannot be used) are printed in one line; anything else is a bug and keeps its traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    from asd_se.core.errors import AsdSeError, ConfigError
    from asd_se.core.signals import Terminated, sigterm_raises

    try:
        with sigterm_raises():
            return args.run(args)
    except (KeyboardInterrupt, Terminated) as stop:
        how, code = ("interrupted", EXIT_INTERRUPTED) if isinstance(stop, KeyboardInterrupt) else \
            ("terminated", EXIT_TERMINATED)
        print(f"asd-se {args.command}: {how}; nothing partial was left (rerun to finish)", file=sys.stderr)
        return code
    except (AsdSeError, OSError) as err:
        if args.verbose:
            traceback.print_exc()
        text = str(err) if isinstance(err, AsdSeError) or not err.filename else f"{err.filename}: {err.strerror}"
        print(f"asd-se {args.command}: error: {text}", file=sys.stderr)
        if not args.verbose:
            print("  (rerun with -v for the traceback)", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
