"""``asd-se`` commands: the data commands: synth, talkset, download ava, prep (and its --check), merge.

Each handler (``cmd_*``) sits beside the parser that declares its options."""

from __future__ import annotations

import argparse
from pathlib import Path

from asd_se.core.errors import EXIT_OK
from asd_se.core.fsio import check_outputs
from asd_se.core.options import AT_LEAST_ONE, NOT_NEGATIVE, Range, ranged


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


def synth_parser(commands) -> None:
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


def cmd_talkset(args: argparse.Namespace) -> int:
    from asd_se.core.options import settings_from
    from data_prep.talkset.build import TalksetSettings, build

    check_outputs([args.clips], folders=[args.out])
    summary = build(args.clips, args.out, settings_from(TalksetSettings, args))
    print(f"AVA-format dataset of real talking faces in {args.out}:")
    print(summary.render())
    print(f"next: asd-se prep --dataset talkset --root {args.out} --out STORE")
    return summary.exit_code


def talkset_parser(commands) -> None:
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


def download_parser(commands) -> None:
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


def cmd_merge(args: argparse.Namespace) -> int:
    from data_prep.prep import merge

    check_outputs(args.stores, folders=[args.out])
    print(f"{args.out}: index of {merge(args.out, args.stores)} tracks")
    return EXIT_OK


def prep_parsers(commands) -> None:
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
