"""Progress of long stages: a tqdm bar on a terminal; where stderr is a file or a pipe (a log, CI), no redraws
but one log line when the stage ends, so logs stay readable."""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

log = logging.getLogger("asd_se")
Item = TypeVar("Item")


class Progress:
    """Count the steps of one stage (``desc``, counted in ``unit``); ``enabled=False`` shows nothing at all."""

    def __init__(self, desc: str, unit: str, total: int | None = None, enabled: bool = True):
        self.desc, self.unit, self.count, self.enabled = desc, unit, 0, enabled
        self.postfix: dict[str, str] = {}
        scale = {"unit_scale": True, "unit_divisor": 1024} if unit == "B" else {}  # bytes as KB, MB, GB
        self._bar = tqdm(total=total, desc=desc, unit=unit, **scale) if enabled and sys.stderr.isatty() else None
        self._started = time.perf_counter()

    def update(self, steps: int = 1) -> None:
        self.count += steps
        if self._bar is not None:
            self._bar.update(steps)

    def set_postfix(self, **values: str) -> None:
        self.postfix = values
        if self._bar is not None:
            self._bar.set_postfix(**values)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled:
            details = "".join(f", {key} {value}" for key, value in self.postfix.items())
            log.info("%s: %d %s in %.1f s%s", self.desc, self.count, self.unit,
                     time.perf_counter() - self._started, details)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def with_progress(items: Iterable[Item], desc: str, unit: str, total: int | None = None,
             enabled: bool = True) -> Iterator[Item]:
    """``items``, counted as one stage (see Progress); ``total`` defaults to ``len(items)`` where it has one."""
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)
    with Progress(desc, unit, total, enabled) as bar:
        for item in items:
            yield item
            bar.update()
