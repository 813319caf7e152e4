"""A live stream's faces: placed by the detections it has waited for, whatever the detector's timing, and cut
around boxes filtered as render filters them, within the future the run allows."""

from __future__ import annotations

import numpy as np
import pytest

from asd_se.core.crop import crop_future, smooth_crop_boxes
from asd_se.faces.detect import Detection, FaceDetector
from asd_se.live.faces import LiveFaces
from asd_se.video.tracks import FaceFinder

FRAMES, EVERY = 60, 5


def _stream(seed: int = 0) -> tuple[list[np.ndarray], dict[int, list[Detection]]]:
    """A 25 fps grey stream ``(120, 160)`` with one face whose detections (every ``EVERY`` frames) jump ±4 px."""
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (120, 160), np.uint8) for _ in range(FRAMES)]
    detections = {}
    for index in range(0, FRAMES, EVERY):
        jitter = 4.0 * (-1) ** (index // EVERY)
        detections[index] = [Detection((50 + jitter, 30 + jitter, 100 + jitter, 80 + jitter), 0.9)]
    return frames, detections


def _run(crop: str, future: int, early: int, detections: dict[int, list[Detection]] | None = None) -> LiveFaces:
    """Place every frame, the detector's answers handed over ``early`` frames before the frame that needs them
    (0: just in time); each frame placed by the detections before it (the first by its own, as a run does)."""
    frames, made = _stream()
    detections = made if detections is None else detections
    faces = LiveFaces(FaceFinder(FaceDetector(), EVERY), crop, future)
    handed = -1
    for index, gray in enumerate(frames):
        settled = index + 1 if index == 0 else index
        while handed + 1 < min(FRAMES, settled + early):
            handed += 1
            if handed in detections:
                faces.finder.track(handed, detections[handed], 25.0)
        faces.frame(index, index / 25.0, 0.0, gray, settled)
    faces.close_all()
    return faces


@pytest.mark.parametrize("crop", ["asd-se", "lightasd"])
def test_the_same_stream_gets_the_same_crops_however_the_detections_land(crop):
    future = crop_future(crop)
    on_time, early = _run(crop, future, 0), _run(crop, future, 2 * EVERY)
    [track] = on_time.tracks.values()
    [other] = early.tracks.values()
    assert track.end == other.end == FRAMES
    np.testing.assert_array_equal(np.stack(track.boxes.items), np.stack(other.boxes.items))
    np.testing.assert_array_equal(np.stack(track.crops.items), np.stack(other.crops.items))


def _interpolated(detections: dict[int, list[Detection]]) -> np.ndarray:
    """``(FRAMES, 4)``: the one face's box per frame, linear between its detections, held after the last."""
    known = np.array(sorted(detections))
    return np.stack([np.interp(np.arange(FRAMES), known, [detections[f][0].box[j] for f in known])
                     for j in range(4)], axis=1)


def test_without_a_future_a_box_is_the_last_detections_and_with_one_it_moves_to_the_next():
    [track] = _run("asd-se", 0, 0).tracks.values()
    boxes = np.stack(track.boxes.items)
    assert np.all(boxes[1:EVERY + 1] == boxes[0])  # frame 5 too: placed before its own detection is waited for
    [track] = _run("asd-se", EVERY, 0).tracks.values()  # the next detection is always in before a crop is cut
    np.testing.assert_allclose(np.stack(track.boxes.items), _interpolated(_stream()[1]))


def test_with_the_future_render_reads_a_live_crop_box_is_renders():
    [track] = _run("lightasd", EVERY + crop_future("lightasd"), 0).tracks.values()
    render = smooth_crop_boxes(_interpolated(_stream()[1]), "lightasd")
    np.testing.assert_allclose(np.stack(track.boxes.items), render)


@pytest.mark.parametrize("future", [0, 3, crop_future("lightasd")])
def test_a_crop_box_reads_nothing_beyond_its_future(future):
    """Detections from frame 30 on moved: the boxes of the samples cut before they were in stay the same."""
    before = np.stack(next(iter(_run("lightasd", future, 0).tracks.values())).boxes.items)
    moved = {index: [Detection(tuple(np.add(found[0].box, 4.0)), 0.9)] if index >= 30 else found
             for index, found in _stream()[1].items()}
    after = np.stack(next(iter(_run("lightasd", future, 0, moved).tracks.values())).boxes.items)
    np.testing.assert_array_equal(after[:30 - future], before[:30 - future])
    assert not np.allclose(after[30 - future:], before[30 - future:])


def test_a_closed_track_is_cut_to_its_end_and_nothing_is_kept_for_it():
    faces = _run("lightasd", crop_future("lightasd"), 0)
    [track] = faces.tracks.values()
    assert not track.open and track.end == track.shown == FRAMES
    assert faces.pictures.start == faces.pictures.end  # no frame held for a face still to be cut


@pytest.mark.parametrize("crop", ["asd-se", "lightasd"])
def test_what_a_stream_keeps_of_its_boxes_does_not_grow_with_its_length(crop):
    faces = _run(crop, crop_future(crop), 0)
    [track] = faces.tracks.values()
    assert len(track.detected) <= 2  # of 12 detections: the one before the oldest box still read, and after
    assert len(faces.sample_frames.items) <= crop_future(crop) + 1
    assert all(len(frames) == 1 for _, frames, _ in faces.finder.tracker.open_tracks())
