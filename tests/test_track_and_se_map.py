"""The face tracker and the SE heatmap on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asd_se.core.errors import ConfigError
from asd_se.explain.maps import upsample
from asd_se.explain.se_map import ChannelSelection, SeExplainer, paper_threshold, select_channels
from asd_se.faces.detect import Detection
from asd_se.faces.track import IouTracker
from asd_se.models import ASDOutput


def _se_map(maps: torch.Tensor, se_weights: torch.Tensor) -> torch.Tensor:
    """The SE explainer's map ``(T, h, w)`` of activations ``(T, C, h, w)`` under SE weights ``(C,)`` or ``(T, C)``."""
    frames = maps.shape[0]
    output = ASDOutput(torch.zeros(1, frames), torch.zeros(1, frames), torch.zeros(1, frames), None, se_weights[None])
    return SeExplainer()(None, maps.transpose(0, 1)[None], None, output)


def _det(x: float, y: float, size: float = 40) -> Detection:
    return Detection((x, y, x + size, y + size), 0.9)


def test_two_moving_faces_every_third_frame_with_a_miss_become_two_full_tracks():
    tracker = IouTracker(max_gap=8, min_length=10, smooth=1)
    for frame in range(0, 31, 3):
        detections = [_det(10 + frame, 20)]
        if frame != 12:  # the second face is missed once
            detections.append(_det(200 - frame, 50))
        tracker.update(frame, detections)
    tracker.update(33, [_det(400, 400)])  # a one-off false detection
    tracks = tracker.finish()
    assert len(tracks) == 2
    for track in tracks:
        assert list(track.frames) == list(range(0, 31))
    left = next(t for t in tracks if t.boxes[0, 0] < 100)
    assert left.boxes[10, 0] == pytest.approx(20)  # interpolated between frames 9 and 12
    right = next(t for t in tracks if t is not left)
    assert right.boxes[12, 0] == pytest.approx(188)  # filled across the miss


def test_a_face_leaving_while_another_stays_closes_only_its_track():
    """The crash real footage found: one open track goes stale while another does not (tracks compared by
    value made ``t not in stale`` ambiguous on their array boxes)."""
    tracker = IouTracker(max_gap=4, min_length=5, smooth=1)
    for frame in range(40):
        detections = [_det(100, 100)]  # stays the whole time
        if frame < 15:
            detections.append(_det(300, 100))  # leaves at frame 15
        tracker.update(frame, detections)
    tracks = tracker.finish()
    assert sorted((t.frames[0], t.frames[-1]) for t in tracks) == [(0, 14), (0, 39)]


def test_many_short_tracks_and_flickering_false_detections_open_and_close_together():
    rng = np.random.default_rng(0)
    tracker = IouTracker(max_gap=3, min_length=6, smooth=1)
    for frame in range(120):
        detections = [_det(50, 50)]  # one real face throughout
        # eight faces that appear for 8 frames each, in two staggered waves: several go stale at once
        detections += [_det(150 + 60 * k, 200) for k in range(8) if (frame // 8 + k) % 3 == 0]
        # false detections at random places, each on one frame only
        detections += [_det(*rng.uniform(500, 900, 2), size=20) for _ in range(rng.integers(0, 3))]
        tracker.update(frame, detections)
    tracks = tracker.finish()
    assert any(t.frames[0] == 0 and t.frames[-1] == 119 for t in tracks)  # the real face, unbroken
    assert all(t.boxes[0, 1] < 500 for t in tracks)  # one-frame false detections never make a track
    short = [t for t in tracks if t.frames[-1] < 119 or t.frames[0] > 0]
    assert len(short) > 10 and all(len(t.frames) == 8 for t in short)


def test_a_cut_ends_tracks_and_smoothing_removes_jitter():
    tracker = IouTracker(min_length=3, smooth=5)
    for frame in range(20):
        if frame == 10:
            tracker.cut()
        tracker.update(frame, [_det(100 + (2 if frame % 2 else -2), 100)])
    tracks = tracker.finish()
    assert [(t.frames[0], t.frames[-1]) for t in tracks] == [(0, 9), (10, 19)]
    assert np.ptp(tracks[0].boxes[2:-2, 0]) < 2.0  # ±2 px jitter averaged out


def test_threshold_selection_is_mean_plus_1282_std():
    weights = torch.tensor([0.1] * 18 + [0.9, 0.3])  # mean 0.15, std 0.1775: threshold 0.3775
    assert paper_threshold(weights).item() == pytest.approx(0.3775, abs=1e-4)
    paper = ChannelSelection(floor=0.0)
    assert select_channels(weights, paper).tolist() == [False] * 18 + [True, False]
    assert select_channels(weights, ChannelSelection("rank", 0.1)).tolist() == [False] * 18 + [True, True]
    assert select_channels(torch.full((8,), 0.5), paper).sum() == 1  # flat vector: the top channel
    assert select_channels(torch.full((8,), 0.5)).all()  # with the default floor, the tie keeps them all


def test_a_floor_tops_up_a_threshold_that_picks_too_few():
    weights = torch.tensor([0.1] * 18 + [0.9, 0.3])  # the threshold picks 1 channel of 20
    assert select_channels(weights, ChannelSelection(floor=0.1)).tolist() == [False] * 18 + [True, True]
    assert select_channels(weights, ChannelSelection(floor=0.05)).tolist() == [False] * 18 + [True, False]
    many = torch.tensor([0.1] * 16 + [0.9, 0.9, 0.9, 0.9])  # the threshold picks 4: more than the floor
    assert select_channels(many, ChannelSelection(floor=0.1)).sum() == 4
    with pytest.raises(ConfigError, match="floor"):
        ChannelSelection(floor=1.5)
    with pytest.raises(ConfigError, match="'threshold', 'rank'"):
        ChannelSelection("best")


def test_heatmap_follows_the_selected_channel():
    maps = torch.zeros(2, 10, 7, 7)
    maps[:, 3, 5, 1] = 4.0  # the channel SE rates highest fires low-left
    maps[:, 7, 0, 6] = 9.0  # a strong channel SE rates low must not show
    weights = torch.full((10,), 0.2)
    weights[3] = 0.95
    heat = upsample(_se_map(maps, weights), 112)
    assert heat.shape == (2, 112, 112) and heat.min() >= 0 and heat.max() == pytest.approx(1.0, abs=0.05)
    row, col = np.unravel_index(heat[0].argmax().item(), (112, 112))
    assert row // 16 == 5 and col // 16 == 1
    per_frame = upsample(_se_map(maps, weights.expand(2, 10)), 14)
    assert torch.allclose(per_frame, upsample(_se_map(maps, weights), 14))
