"""Every command's flags as a user types them: names, how many values, defaults, choices, required — compared with
the list captured in ``tests/fixtures/cli_flags.json``. A change of the command line is then a change of that file,
made on purpose (``python tests/test_cli_flags.py`` rewrites it), never a side effect of moving code."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asd_se.cli import build_parser

CAPTURED = Path(__file__).resolve().parent / "fixtures" / "cli_flags.json"


def flags(parser: argparse.ArgumentParser) -> dict[str, list[dict]]:
    """Command name ("" for the program) -> its arguments, each as the user-visible facts of one argument."""
    found, pending = {}, [("", parser)]
    while pending:
        name, current = pending.pop()
        rows = []
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending += [(f"{name} {sub}".strip(), child) for sub, child in action.choices.items()]
                rows.append({"commands": sorted(action.choices)})
                continue
            rows.append({"flags": list(action.option_strings) or [action.dest], "nargs": repr(action.nargs),
                         "default": repr(action.default), "choices": repr(action.choices),
                         "required": action.required, "kind": type(action).__name__})
        found[name] = rows
    return dict(sorted(found.items()))


def test_every_command_keeps_its_flags():
    assert flags(build_parser()) == json.loads(CAPTURED.read_text())


def test_the_comparison_sees_a_changed_default():
    parser = build_parser()
    before = flags(parser)
    render = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["render"]
    next(a for a in render._actions if "--alpha" in a.option_strings).default = 0.123
    assert flags(parser) != before


if __name__ == "__main__":
    CAPTURED.write_text(json.dumps(flags(build_parser()), indent=1) + "\n")
