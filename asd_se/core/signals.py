"""How a command ends at SIGTERM: as at Ctrl-C, by an exception in the main thread, so every ``finally`` and
``atomic_path`` cleanup runs (Python's default for SIGTERM is to die on the spot, leaving temporaries and
workers behind)."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

EXIT_TERMINATED = 143  # 128 + SIGTERM, as shells report it


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so ``except Exception`` does not swallow it."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises Terminated in the main thread (elsewhere: nothing changes, since
    signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
