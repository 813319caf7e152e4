"""How a command ends at SIGINT and SIGTERM, in the two ways a run can be in.

Before its outputs are open (``sigterm_raises``, the CLI's default for every command): SIGTERM raises
``Terminated`` in the main thread as Ctrl-C raises KeyboardInterrupt, so every ``finally`` and ``atomic_path``
cleanup runs (Python's default for SIGTERM is to die on the spot, leaving temporaries and workers behind).

While a stream writes journals (``StopRequest``, ``asd-se live``): the first signal is recorded, not raised, and
every wait of the run polls it (``stopped``), so the run ends at its next step with its outputs closed and its
last line written; a second signal raises at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

POLL_S = 0.1  # how often a wait looks at a stop request: a signal is honoured well within a second


class Terminated(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so ``except Exception`` does not swallow it."""


def _raise_terminated(signum: int, frame) -> None:
    raise Terminated()


def raised(name: str) -> BaseException:
    """The exception a signal of ``name`` (``SIGINT`` / ``SIGTERM``) raises where it is not recorded."""
    return KeyboardInterrupt() if name == "SIGINT" else Terminated()


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


class StopRequest:
    """SIGINT and SIGTERM recorded while the ``with`` block runs: ``name`` is the first one's (``SIGINT`` /
    ``SIGTERM``; None before), ``stopped()`` polls it; a second signal raises its exception at once (a run stuck
    somewhere can still be left). Outside the main thread (which alone receives signals) nothing is installed."""

    def __init__(self):
        self.name: str | None = None
        self._saved: dict[int, object] = {}

    def stopped(self) -> bool:
        return self.name is not None

    def _handler(self, number: int, frame) -> None:
        name = signal.Signals(number).name
        if self.name is not None:
            raise raised(name)
        self.name = name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._saved[number] = signal.signal(number, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for number, previous in self._saved.items():
            signal.signal(number, previous)
        self._saved.clear()


def interruptible(call: Callable[[], T]) -> T:
    """``call()`` run in a daemon thread while this thread waits for it in ``POLL_S`` slices, so a signal's
    exception (KeyboardInterrupt, Terminated) ends the wait at once even where ``call`` blocks inside C (FFmpeg
    probing a stream that sends nothing); ``call`` is then left to end by itself. Its own exception is raised here."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as err:  # handed to the waiting thread, whatever it is
            outcome.append((False, err))

    worker = threading.Thread(target=run, name="asd-se-interruptible", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(POLL_S)
    succeeded, value = outcome[0]
    if not succeeded:
        raise value
    return value
