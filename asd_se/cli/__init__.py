"""The ``asd-se`` command line (``main``: the console script's entry point, in ``main.py``)."""

from asd_se.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
