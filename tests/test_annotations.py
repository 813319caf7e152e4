"""AVA CSV reading: both layouts read identically; every kind of bad row is reported by file and line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from asd_se.core.annotations import COLUMNS, ORIG_EXTRA, read_annotations, read_csv

GOOD = ["vid_A", "1.00", "0.1", "0.2", "0.5", "0.6", "SPEAKING_AUDIBLE", "vid_A_0900_0960:1"]


def _write(path: Path, rows: list[list[str]], header: list[str] | None = None) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _strip(rows):
    return [(r.video_id, r.timestamp_text, r.box, r.label, r.entity_id, r.split) for r in rows]


def test_headerless_and_orig_layouts_read_identically(synth_root, tmp_path):
    official = synth_root / "annotations" / "train.csv"
    with open(official, newline="") as handle:
        cells = list(csv.reader(handle))
    orig = _write(tmp_path / "train_orig.csv", [c + [str(i % 3), str(i)] for i, c in enumerate(cells)],
                  header=list(COLUMNS + ORIG_EXTRA))
    rows_a, problems_a = read_csv(official)
    rows_b, problems_b = read_csv(orig)
    assert problems_a == problems_b == []
    assert len(rows_a) == len(cells) > 100
    assert _strip(rows_a) == _strip(rows_b)


@pytest.mark.parametrize("cells, message", [
    (GOOD[:7], "expected 8 columns, found 7"),
    (GOOD + ["extra"], "expected 8 columns, found 9"),
    (GOOD[:6] + ["TALKING"] + GOOD[7:], "unknown label 'TALKING'"),
    (GOOD[:2] + ["nan"] + GOOD[3:], "NaN"),
    (GOOD[:4] + ["1.7"] + GOOD[5:], "outside the normalised range"),
    (GOOD[:2] + ["0.5", "0.2", "0.4", "0.6"] + GOOD[6:], "empty (needs x2 > x1"),
    (GOOD[:1] + ["abc"] + GOOD[2:], "non-numeric"),
    (GOOD[:1] + ["-3"] + GOOD[2:], "not a time between 0 and 86400 s"),
    (["../../etc"] + GOOD[1:], "video_id '../../etc' has characters not allowed"),
    (GOOD[:7] + ["a/b:1"], "entity_id 'a/b:1' has characters not allowed"),
    (["..hidden"] + GOOD[1:], "not allowed"),
])
def test_bad_rows_are_skipped_with_file_and_line(tmp_path, cells, message):
    path = _write(tmp_path / "val.csv", [GOOD, cells, GOOD[:1] + ["2.00"] + GOOD[2:]])
    rows, problems = read_csv(path)
    assert [r.line for r in rows] == [1, 3]
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}:2: ")
    assert message in str(problems[0])


def test_duplicates_across_files_keep_the_first(tmp_path):
    first = _write(tmp_path / "train.csv", [GOOD])
    second = _write(tmp_path / "val.csv", [GOOD[:1] + ["1.000"] + GOOD[2:]])
    rows, problems = read_annotations([first, second])
    assert len(rows) == 1 and rows[0].split == "train"
    assert len(problems) == 1 and f"{second}:1: duplicate of {first}:1" in str(problems[0])


def test_header_with_missing_or_unknown_columns_skips_the_file(tmp_path):
    path = _write(tmp_path / "train.csv", [GOOD], header=list(COLUMNS[:-1]) + ["speaker"])
    rows, problems = read_csv(path)
    assert rows == []
    assert "header lacks columns ['entity_id']" in str(problems[0]) and "'speaker'" in str(problems[0])


def test_ava_ids_with_colons_are_accepted(tmp_path):
    rows, problems = read_csv(_write(tmp_path / "train.csv", [["-5KQ66BBWC4", "902.05", "0", "0", "1", "1",
                                                               "NOT_SPEAKING", "-5KQ66BBWC4_0900_0960:2"]]))
    assert problems == [] and rows[0].entity_id == "-5KQ66BBWC4_0900_0960:2"
