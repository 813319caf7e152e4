"""The detection pool: worker results equal in-process detection, in order, through reused shared slots."""

from __future__ import annotations

from itertools import islice
from multiprocessing.shared_memory import SharedMemory

import cv2
import numpy as np
import pytest

from asd_se.core.media import decode
from asd_se.faces.detect import FaceDetector
from asd_se.faces.pool import DetectionPool


def _frames(synth_root, count: int) -> list[np.ndarray]:
    video = sorted((synth_root / "videos").glob("*.mp4"))[0]
    return [image for _, (image,) in islice(decode(video, ("rgb24",)), count)]


def _scaled(detector: FaceDetector, rgb: np.ndarray) -> list[np.ndarray]:
    height, width = rgb.shape[:2]
    return [cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) for size in detector.input_sizes(width, height)]


def test_pool_matches_in_process_detection_in_order(synth_root):
    detector = FaceDetector()
    frames = _frames(synth_root, 12)
    size = (frames[0].shape[1], frames[0].shape[0])
    expected = [detector.detect_rgb(_scaled(detector, rgb), size) for rgb in frames]
    assert sum(len(found) for found in expected) >= len(frames)  # faces present, so the comparison says something
    got = []
    with DetectionPool(detector, workers=2, max_pending=3) as pool:  # 12 frames through 3 slots: each reused
        for key, rgb in enumerate(frames):
            pool.submit(key, _scaled(detector, rgb), size)
            got += pool.ready()
        got += pool.drain()
        name = pool._memory.name
    assert [key for key, _ in got] == list(range(len(frames)))
    assert [found for _, found in got] == expected
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)  # the shared block is gone with the pool


def test_a_picture_that_changes_size_gets_slots_of_its_size_and_every_frame_its_detections(synth_root):
    detector = FaceDetector()
    frames = _frames(synth_root, 4)
    frames = frames[:2] + [cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2)) for rgb in frames[2:]]
    sizes = [(rgb.shape[1], rgb.shape[0]) for rgb in frames]
    expected = [detector.detect_rgb(_scaled(detector, rgb), size) for rgb, size in zip(frames, sizes)]
    assert all(expected), "faces on every frame, so the comparison says something"
    with DetectionPool(detector, workers=1, max_pending=2) as pool:
        for key, (rgb, size) in enumerate(zip(frames, sizes)):
            pool.submit(key, _scaled(detector, rgb), size)
            if key == 1:
                first_block = pool._memory.name
        got = list(pool.drain())
        assert pool._memory.name != first_block
    assert [found for _, found in got] == expected
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=first_block)  # the first size's block was freed when the size changed


def test_ctrl_c_inside_the_pool_leaves_no_shared_memory(synth_root):
    detector = FaceDetector()
    rgb = _frames(synth_root, 1)[0]
    with pytest.raises(KeyboardInterrupt):
        with DetectionPool(detector, workers=1) as pool:
            pool.submit(0, _scaled(detector, rgb), (rgb.shape[1], rgb.shape[0]))
            name = pool._memory.name
            raise KeyboardInterrupt
    with pytest.raises(FileNotFoundError):
        SharedMemory(name=name)


def _pid_and_threads(job: int) -> tuple[int, int, str | None]:
    import os

    return job, os.getpid(), os.environ.get("OMP_NUM_THREADS")


def test_recycled_jobs_run_in_order_in_fresh_spawned_processes():
    import os

    from asd_se.core.parallel import parallel_map

    before = os.environ.get("OMP_NUM_THREADS")
    results = list(parallel_map(_pid_and_threads, range(7), workers=1, recycle=2))
    assert [job for job, _, _ in results] == list(range(7))
    pids = [pid for _, pid, _ in results]
    assert os.getpid() not in pids  # never inline, even with one worker: a leaking library stays bounded
    assert len(set(pids)) == 4  # a process is replaced after 2 jobs: 7 jobs, 4 processes
    assert {threads for _, _, threads in results} == {"1"}
    assert os.environ.get("OMP_NUM_THREADS") == before  # the parent's own setting is restored
