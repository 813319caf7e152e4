"""``asd-se`` commands: render, live, and the commands that read a render: review, segments.

Each handler (``cmd_*``) sits beside the parser that declares its options."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asd_se.cli.common import CHECKPOINT_HELP
from asd_se.core.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED
from asd_se.core.fsio import check_outputs
from asd_se.core.options import Range, ranged

log = logging.getLogger("asd_se")


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


def render_parser(commands) -> None:
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


def live_parser(commands) -> None:
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


def review_parsers(commands) -> None:
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
