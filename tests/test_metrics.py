"""mAP with official AVA semantics on hand-computed cases, and the predictions file format."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest

from asd_se.core.ava import Prediction, write_predictions
from asd_se.core.metrics import MetricUndefined, ava_average_precision, average_precision
from asd_se.training.evaluate import summarise


def test_hand_computed_ap():
    # ranks: hit (P=1), miss, hit (P=2/3), miss -> AP = 0.5·1 + 0.5·2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # the precision envelope: a later higher precision lifts earlier recall levels
    assert average_precision(np.array([0.9, 0.8, 0.7]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert average_precision(np.array([0.1, 0.2]), np.array([1, 1])) == pytest.approx(1.0)


def test_ties_keep_ground_truth_order():
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(1.0)


def test_all_negatives_is_undefined_not_zero():
    with pytest.raises(MetricUndefined, match="undefined"):
        average_precision(np.array([0.3, 0.2]), np.array([0, 0]))


def _key(i):
    return ("vid", round(i * 0.04, 3), "vid:1")


def test_speaking_not_audible_counts_as_negative_and_rows_join_by_key():
    truth = {_key(0): "SPEAKING_NOT_AUDIBLE", _key(1): "SPEAKING_AUDIBLE", _key(2): "NOT_SPEAKING"}
    scores = {_key(0): 0.9, _key(1): 0.8, _key(2): 0.1}
    assert ava_average_precision(truth, scores) == pytest.approx(0.5)
    shuffled = dict(random.Random(0).sample(list(scores.items()), 3))
    assert ava_average_precision(truth, shuffled) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one to one"):
        ava_average_precision(truth, {k: v for k, v in scores.items() if k != _key(2)})


def test_predictions_file_is_the_official_format(tmp_path):
    predictions = [Prediction("v:1", f"{t:.2f}", [0.1, 0.2, 0.30000000000000004, 0.4], label, "v:1_e", s, s, s)
                   for t, label, s in [(1, "SPEAKING_AUDIBLE", 0.7), (1.04, "NOT_SPEAKING", 0.2)]]
    write_predictions(tmp_path / "p.csv", predictions)
    rows = list(csv.reader(open(tmp_path / "p.csv", newline="")))
    assert [len(r) for r in rows] == [9, 9]
    assert {r[6] for r in rows} == {"SPEAKING_AUDIBLE"}
    assert [float(v) for v in rows[0][2:6]] == [0.1, 0.2, 0.30000000000000004, 0.4]
    assert rows[1][:2] == ["v:1", "1.04"] and float(rows[1][8]) == pytest.approx(0.2)
    assert summarise(predictions).map_av == pytest.approx(1.0)
