"""Settings dataclasses as command-line options. A field's default, help text, choices and allowed range are
written once, in the dataclass (``setting(...)``); the CLI generates its options from it (``add_options``) and
builds the dataclass back from the parsed arguments (``settings_from``), so the two can never disagree. The same
ranges check the dataclass when it is built in code (``check_settings`` in ``__post_init__``) and the options
when they are parsed (argparse exits 2 before any work), so a bad value never reaches the work."""

from __future__ import annotations

import argparse
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from asd_se.core.errors import ConfigError


def check_choice(name: str, value: Any, allowed: Sequence) -> None:
    """ConfigError unless ``value`` is one of ``allowed`` (the message names the setting and the choices)."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``low <= value`` (or ``low < value`` with ``open_low``) ``<= high``."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def __str__(self) -> str:
        low = "" if self.low is None else f"{'>' if self.open_low else '>='} {self.low:g}"
        if self.high is None:
            return low
        return f"<= {self.high:g}" if self.low is None else f"{low} and <= {self.high:g}"

    def contains(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or value <= self.high

    def check(self, name: str, value: float) -> None:
        """ConfigError naming the setting unless ``value`` lies in the range."""
        if not self.contains(value):
            raise ConfigError(f"{name} must be {self}, not {value!r}")


POSITIVE = Range(0, open_low=True)
AT_LEAST_ONE = Range(1)
NOT_NEGATIVE = Range(0)
FRACTION = Range(0, 1)


def setting(default: Any, help: str, choices: Sequence | None = None, flag: str | None = None,
            range: Range | None = None) -> Any:
    """A dataclass field that is also a command-line option ``--<flag or field name>``, its values limited to
    ``choices`` or ``range`` (for a tuple: each element)."""
    return field(default=default, metadata={"help": help, "choices": choices, "flag": flag, "range": range})


def bounded(default: Any, range: Range) -> Any:
    """A dataclass field limited to ``range`` that is no command-line option (a config file's setting)."""
    return field(default=default, metadata={"range": range})


def check_settings(settings: Any, prefix: str = "") -> None:
    """ConfigError naming the first field of a settings dataclass outside its choices or range (nested
    settings are checked when they are built)."""
    for spec in dataclasses.fields(settings):
        value = getattr(settings, spec.name)
        for item in value if isinstance(value, tuple) else () if value is None else (value,):
            if spec.metadata.get("choices") is not None:
                check_choice(f"{prefix}{spec.name}", item, spec.metadata["choices"])
            if spec.metadata.get("range") is not None and not isinstance(item, bool):
                spec.metadata["range"].check(f"{prefix}{spec.name}", item)


def ranged(kind: type, range: Range) -> Callable[[str], Any]:
    """An argparse ``type``: text -> ``kind``, refused (argparse exits 2 naming the option) outside ``range``."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n' if kind is int else ''} {kind.__name__}") \
                from None
        if not range.contains(value):
            raise argparse.ArgumentTypeError(f"must be {range}, not {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _fields(settings_type: type) -> list[tuple[dataclasses.Field, Any]]:
    """Each field with its type; an optional one (``int | None``: None means "not given") as its type."""
    hints = typing.get_type_hints(settings_type)
    return [(f, _given(hints[f.name])) for f in dataclasses.fields(settings_type)]


def _given(kind: Any) -> Any:
    arguments = [argument for argument in typing.get_args(kind) if argument is not type(None)]
    optional = len(arguments) == 1 and len(typing.get_args(kind)) == 2
    return arguments[0] if optional else kind


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
        else:
            item = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
            bounds = spec.metadata.get("range")
            options.update(type=ranged(item, bounds) if bounds else item, choices=spec.metadata.get("choices"))
            if typing.get_origin(kind) is tuple:
                options["nargs"] = "+"
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
