"""The ``asd-se`` command: parses arguments, sets up logging, calls the layers. No logic of its own; each command's
options and handler live together in ``data.py``, ``learning.py``, ``video.py`` and ``models.py``."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from asd_se.cli import data, learning, models, video
from asd_se.core.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asd-se", description="Active speaker detection that explains itself.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks of every error")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (data.synth_parser, data.talkset_parser, data.download_parser, data.prep_parsers, learning.train_parser,
                learning.evaluate_parser, video.render_parser, video.live_parser, video.review_parsers,
                learning.explain_eval_parser, models.import_parser, models.export_parser, models.models_parser,
                models.demo_parser):
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
