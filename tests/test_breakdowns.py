"""mAP by group (face size, faces on screen, video, category) with bootstrap intervals, on hand-made rows whose
APs are worked out by hand; ``asd-se evaluate`` printing and writing them."""

from __future__ import annotations

import json

import pytest

from asd_se.cli import main
from asd_se.core.ava import POSITIVE, Prediction
from asd_se.training.breakdowns import (
    breakdowns,
    face_count,
    face_size,
    map_difference,
    mean_map_difference,
    overall_interval,
)
from asd_se.training.evaluate import summarise

NEG = "NOT_SPEAKING"


def _row(video: str, stamp: str, entity: str, label: str, score: float) -> Prediction:
    return Prediction(video, stamp, [0.1, 0.1, 0.2, 0.2], label, entity, score, 0.5, 0.5)


# video a: one face (100 px) per frame; video b: two faces per frame (40 px and 200 px), and a third face
# (40 px) in one frame
ROWS = [
    (_row("a", "0.00", "a:1", POSITIVE, 0.9), 100), (_row("a", "0.04", "a:1", NEG, 0.8), 100),
    (_row("a", "0.08", "a:1", POSITIVE, 0.3), 100),
    (_row("b", "0.00", "b:1", POSITIVE, 0.7), 40), (_row("b", "0.00", "b:2", NEG, 0.6), 200),
    (_row("b", "0.04", "b:1", NEG, 0.95), 40), (_row("b", "0.04", "b:2", POSITIVE, 0.2), 200),
    (_row("b", "0.08", "b:1", POSITIVE, 0.5), 40), (_row("b", "0.08", "b:2", NEG, 0.1), 200),
    (_row("b", "0.08", "b:3", NEG, 0.4), 40),
]
PREDICTIONS = [p for p, _ in ROWS]
WIDTHS = {p.key: w for p, w in ROWS}


def test_classes_follow_ava():
    assert [face_size(w) for w in (10, 63.9, 64, 128, 128.1, 900)] == ["small", "small", "medium", "medium",
                                                                       "large", "large"]
    assert [face_count(n) for n in (1, 2, 3, 7)] == ["1", "2", "3+", "3+"]
    assert face_size(None) is None


def test_each_group_has_the_map_worked_out_by_hand():
    groups = {(g.group, g.name.split(" ")[0]): g for g in breakdowns(PREDICTIONS, WIDTHS, {"a": "x", "b": "x"},
                                                                     bootstrap=0)}
    # small: 0.95 N, 0.7 P, 0.5 P, 0.4 N -> precision at the positives 1/2, 2/3; the non-increasing envelope
    # lifts the first to 2/3 -> AP 66.67
    assert groups[("face size", "small")].map == pytest.approx(100 * 2 / 3)
    # medium (video a): 0.9 P, 0.8 N, 0.3 P -> (1 + 2/3) / 2
    assert groups[("face size", "medium")].map == pytest.approx(100 * (1 + 2 / 3) / 2)
    # large: 0.6 N, 0.2 P, 0.1 N -> 1/2
    assert groups[("face size", "large")].map == pytest.approx(50.0)
    assert groups[("faces on screen", "1")].rows == 3 and groups[("faces on screen", "3+")].rows == 3
    # two faces (b at 0.00 and 0.04): 0.95 N, 0.7 P, 0.6 N, 0.2 P -> (1/2 + 2/4) / 2
    assert groups[("faces on screen", "2")].map == pytest.approx(50.0)
    assert groups[("video", "a")].map == groups[("face size", "medium")].map
    assert groups[("category", "x")].map == groups[("all", "all")].map
    assert all(g.low is None for g in groups.values())


def test_track_categories_and_each_kind_of_negative_against_every_positive(tmp_path):
    from asd_se.training.evaluate import read_categories

    path = tmp_path / "categories.csv"  # as asd-se talkset writes it: one face track per line
    path.write_text("video_id,entity_id,category\na,a:1,own\nb,b:1,own\nb,b:2,other\nb,b:3,other\n")
    categories = read_categories(path)
    assert categories[("b", "b:2")] == "other"
    groups = {(g.group, g.name): g for g in breakdowns(PREDICTIONS, WIDTHS, categories, bootstrap=0)}
    # the category alone: 0.6 N, 0.4 N, 0.2 P, 0.1 N -> 1/3
    assert groups[("category", "other")].map == pytest.approx(100 / 3)
    assert groups[("category", "other")].positives == 1
    # every positive (0.9 0.7 0.5 0.3 0.2) against the negatives of b:2 and b:3 (0.6 0.4 0.1):
    # 0.9 P, 0.7 P, 0.6 N, 0.5 P, 0.4 N, 0.3 P, 0.2 P, 0.1 N: precisions 1, 1, 3/4, 4/6, 5/7, the envelope
    # lifting 4/6 to 5/7
    other = groups[("negatives vs all positives", "other")]
    assert other.map == pytest.approx(100 * (1 + 1 + 3 / 4 + 5 / 7 + 5 / 7) / 5)
    assert (other.rows, other.positives) == (8, 5)
    # against the negatives of own tracks (0.95 b:1, 0.8 a:1): 0.95 N, 0.9 P, 0.8 N, 0.7 P, 0.5 P, 0.3 P, 0.2 P:
    # precisions 1/2, 2/4, 3/5, 4/6, 5/7, all lifted to 5/7
    own = groups[("negatives vs all positives", "own")]
    assert own.map == pytest.approx(100 * 5 / 7)


def test_bootstrap_is_reproducible_for_a_seed_and_brackets_the_estimate():
    many = [_row(f"v{v}", f"{t:.2f}", f"v{v}:1", POSITIVE if (t + v) % 3 == 0 else NEG,
                 ((t * 7 + v * 3) % 10) / 10 + (0.3 if (t + v) % 3 == 0 else 0)) for v in range(12) for t in range(20)]
    first = breakdowns(many, bootstrap=200, seed=3)
    assert first == breakdowns(many, bootstrap=200, seed=3)
    assert first != breakdowns(many, bootstrap=200, seed=4)
    overall = first[0]
    assert overall.group == "all" and overall.low < overall.map < overall.high
    video = next(g for g in first if g.group == "video")
    assert video.low is None  # one video of one track: nothing to resample, so no interval is claimed
    two = breakdowns([p for p in many if p.video_id in ("v0", "v1")], bootstrap=200, seed=3)
    assert two[0].low is None and two[0].map is not None  # two videos: 3 distinct resamples, no interval
    # training's per-epoch interval is the same "all" row, without the groups
    assert overall_interval(many, bootstrap=200, seed=3) == (overall.low, overall.high)
    assert overall_interval(many, bootstrap=0) == (None, None)


def test_unknown_face_sizes_are_said_not_guessed():
    result = summarise(PREDICTIONS, widths={key: None for key in WIDTHS}, bootstrap=0)
    assert not [g for g in result.groups if g.group == "face size"]
    assert "face size: unknown" in result.render()


def test_evaluate_prints_and_writes_the_groups(trained_run, store_root, tmp_path, capsys):
    predictions = tmp_path / "val.csv"
    assert main(["evaluate", "--checkpoint", str(trained_run / "best.pt"), "--data", str(store_root),
                 "--predictions", str(predictions), "--bootstrap", "50", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "mAP by group" in out and "faces on screen: " in out and "95% bootstrap interval, 50 draws" in out
    saved = json.loads(predictions.with_suffix(".breakdowns.json").read_text())
    assert saved["bootstrap"] == 50 and saved["seed"] == 1
    kinds = {g["group"] for g in saved["groups"]}
    assert {"all", "face size", "faces on screen", "video"} <= kinds  # the store recorded its frame sizes


def test_a_paired_difference_is_zero_for_one_model_and_signed_for_two():
    many = [_row(f"v{v}", f"{t:.2f}", f"v{v}:1", POSITIVE if (t + v) % 3 == 0 else NEG,
                 ((t * 7 + v * 3) % 10) / 10) for v in range(8) for t in range(20)]
    same = map_difference(many, list(reversed(many)), bootstrap=100, seed=0)  # joined by key, not by position
    assert (same.map, same.low, same.high) == (0.0, 0.0, 0.0)
    perfect = [Prediction(p.video_id, p.timestamp, p.box, p.label, p.entity_id, float(p.label == POSITIVE), 0, 0)
               for p in many]
    better = map_difference(perfect, many, bootstrap=100, seed=0)
    assert better.map == pytest.approx(100 - breakdowns(many, bootstrap=0)[0].map) and better.low > 0
    with pytest.raises(ValueError, match="same rows"):
        map_difference(many[:-1], many)


def test_a_difference_of_means_over_runs_weights_each_side_by_its_own_count():
    many = [_row(f"v{v}", f"{t:.2f}", f"v{v}:1", POSITIVE if (t + v) % 3 == 0 else NEG,
                 ((t * 7 + v * 3) % 10) / 10) for v in range(8) for t in range(20)]
    perfect = [Prediction(p.video_id, p.timestamp, p.box, p.label, p.entity_id, float(p.label == POSITIVE), 0, 0)
               for p in many]
    alone = breakdowns(many, bootstrap=0)[0].map
    mixed = mean_map_difference([perfect, list(reversed(many))], [many], bootstrap=100, seed=0)
    assert mixed.map == pytest.approx((100 - alone) / 2) and 0 < mixed.low <= mixed.map <= mixed.high
    assert mean_map_difference([many, many], [many, many, many], bootstrap=50).map == pytest.approx(0)
    with pytest.raises(ValueError, match="same rows"):
        mean_map_difference([many], [many, many[1:]])
