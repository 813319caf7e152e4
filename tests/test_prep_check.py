"""``asd-se prep --check``: every problem prep would meet, found without preparing; estimates; nothing written."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from asd_se.cli import main
from asd_se.core.errors import EXIT_SKIPPED
from asd_se.core.writer import VideoWriter
from data_prep.check import check
from data_prep.prep import PrepConfig
from data_prep.store import TrackStore


def _files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*")}


def test_a_clean_set_passes_and_its_estimates_match_what_prep_made(synth_root, store_root, capsys):
    before = _files(synth_root)
    code = main(["prep", "--check", "--dataset", "synth", "--root", str(synth_root), "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "3/3 videos ready for prep" in out and "estimate on this machine: prep ≈" in out
    assert out.count(" ok") == 3 and "mp4 h264/aac" in out
    assert _files(synth_root) == before  # nothing written, nothing touched
    report = check(PrepConfig((synth_root / "annotations",), synth_root / "videos", Path("unused")))
    made = TrackStore.open(store_root)
    assert sum(v.face_frames for v in report.videos) == sum(m.frames for m in made.tracks())
    store_bytes = sum(p.stat().st_size for p in (store_root / "videos").glob("*.npz"))
    assert 0.5 < sum(v.store_bytes for v in report.videos) / store_bytes < 2.0


def test_every_problem_prep_would_meet_is_reported_by_name(synth_copy, tmp_path, capsys):
    videos = sorted((synth_copy / "videos").glob("*.mp4"))
    videos[0].write_bytes(b"")
    videos[1].unlink()
    with VideoWriter(videos[2], 64, 48, 25) as writer:  # no audio stream
        for _ in range(10):
            writer.write_frame(np.full((48, 64, 3), 128, np.uint8))
    train = synth_copy / "annotations" / "train.csv"
    with open(train, newline="") as handle:
        rows = list(csv.reader(handle))
    with open(train, "a", newline="") as handle:
        csv.writer(handle).writerow(rows[0][:6] + ["TALKING", rows[0][7]])
    code = main(["prep", "--check", "--annotations", str(synth_copy / "annotations"),
                 "--videos", str(synth_copy / "videos")])
    out = capsys.readouterr().out
    assert code == EXIT_SKIPPED
    assert f"{videos[0]}: file is empty (0 bytes)" in out
    assert f"no video file for {videos[1].stem}" in out
    assert f"{videos[2]}: has no audio stream" in out
    assert f"train.csv:{len(rows) + 1}:" in out and "TALKING" in out
    assert "0/3 videos ready for prep" in out
    assert not (tmp_path / "store").exists() and not (Path.cwd() / "index.jsonl").exists()


def test_annotations_past_the_end_of_the_file_are_caught(synth_copy, capsys):
    val = synth_copy / "annotations" / "val.csv"
    with open(val, newline="") as handle:
        rows = list(csv.reader(handle))
    with open(val, "a", newline="") as handle:
        csv.writer(handle).writerow(rows[0][:1] + ["30.000"] + rows[0][2:])
    code = main(["prep", "--check", "--dataset", "synth", "--root", str(synth_copy)])
    out = capsys.readouterr().out
    assert code == EXIT_SKIPPED
    assert f"val.csv:{len(rows) + 1}: timestamp 30.000 is past the end of" in out
    assert "1 rows past the end" in out and "3/3 videos ready" in out  # prep keeps the other rows
