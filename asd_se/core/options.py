"""Settings dataclasses as command-line options. A field's default, help text and choices are written once,
in the dataclass (``setting(...)``); the CLI generates its options from it (``add_options``) and builds the
dataclass back from the parsed arguments (``settings_from``), so the two can never disagree."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import field
from typing import Any, Sequence

from asd_se.core.errors import ConfigError


def check_choice(name: str, value: Any, allowed: Sequence) -> None:
    """ConfigError unless ``value`` is one of ``allowed`` (the message names the setting and the choices)."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


def setting(default: Any, help: str, choices: Sequence | None = None, flag: str | None = None) -> Any:
    """A dataclass field that is also a command-line option ``--<flag or field name>``."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag})


def _fields(settings_type: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(settings_type)
    return [(f, hints[f.name]) for f in dataclasses.fields(settings_type)]


def add_options(parser: argparse.ArgumentParser, settings_type: type, prefix: str = "") -> None:
    """One option per field of ``settings_type`` (nested settings dataclasses: ``--<field>-<subfield>``)."""
    for spec, kind in _fields(settings_type):
        name = spec.metadata.get("flag") or spec.name
        if dataclasses.is_dataclass(kind):
            add_options(parser, kind, f"{prefix}{name}-")
            continue
        flag = "--" + f"{prefix}{name}".replace("_", "-")
        described = f"{spec.metadata.get('help', '')} (default: {spec.default})".replace("%", "%%")  # argparse
        options: dict[str, Any] = {"dest": f"{prefix}{name}".replace("-", "_"), "default": spec.default,
                                   "help": described}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is tuple:
            options.update(nargs="+", type=typing.get_args(kind)[0], choices=spec.metadata.get("choices"))
        else:
            options.update(type=kind, choices=spec.metadata.get("choices"))
        parser.add_argument(flag, **options)


def settings_from(settings_type: type, args: argparse.Namespace, prefix: str = "") -> Any:
    """The ``settings_type`` instance the options made by ``add_options`` describe."""
    values = {}
    for spec, kind in _fields(settings_type):
        name = spec.metadata.get("flag") or spec.name
        if dataclasses.is_dataclass(kind):
            values[spec.name] = settings_from(kind, args, f"{prefix}{name}-")
            continue
        value = getattr(args, f"{prefix}{name}".replace("-", "_"))
        values[spec.name] = tuple(value) if typing.get_origin(kind) is tuple else value
    return settings_type(**values)
