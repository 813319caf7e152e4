"""Prep: labels and timestamps survive the round trip; resume after SIGKILL; shards merge to one run; bad input."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np

from asd_se.cli import main
from asd_se.core.ava import LABEL_CODES
from asd_se.core.errors import EXIT_SKIPPED
from data_prep.prep import PrepConfig, merge, prepare
from data_prep.store import TrackStore


def _csv_rows(root: Path) -> dict[tuple[str, str, str], str]:
    rows = {}
    for split in ("train", "val"):
        with open(root / "annotations" / f"{split}.csv", newline="") as handle:
            rows.update({(r[0], r[1], r[7]): r[6] for r in csv.reader(handle)})
    return rows


def _prep(data: Path, out: Path, **kwargs):
    return prepare(PrepConfig((data / "annotations",), data / "videos", out, **kwargs))


def test_labels_and_timestamps_survive_the_round_trip(synth_root, store_root):
    store = TrackStore.open(store_root)
    tracks = store.tracks()
    expected = _csv_rows(synth_root)
    seen = {}
    for meta in tracks:
        for ts, label, frame in zip(meta.rows.timestamps, meta.rows.labels, meta.rows.frames):
            seen[(meta.video_id, ts, meta.entity_id)] = label
            assert abs(float(ts) - (meta.start + frame / 25)) <= 0.02 + 1e-9  # the row's own 25 fps frame
        # every training frame carries the label of the annotation row nearest in time (ties: either)
        stamps = np.array([float(ts) for ts in meta.rows.timestamps])
        codes = np.array([LABEL_CODES[label] for label in meta.rows.labels])
        distance = np.abs(meta.start + np.arange(meta.frames)[:, None] / 25 - stamps[None])
        nearest = distance <= distance.min(axis=1, keepdims=True) + 1e-9
        assert all(code in codes[near] for code, near in zip(meta.labels, nearest))
        assert len(set(meta.labels)) > 1 or len(set(codes)) == 1
        faces, audio = store.load(meta)
        assert faces.shape == (meta.frames, 112, 112) and faces.dtype == np.uint8
        assert audio.shape == (meta.frames * 640,) and audio.std() > 1e-3
    assert seen == expected
    assert {m.split for m in tracks} == {"train", "val"}


def test_rerun_on_a_complete_store_does_nothing(synth_root, store_root, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in store_root.rglob("*") if p.name != "prep_report.json"}
    summary = _prep(synth_root, store_root)
    assert summary.videos_prepared_now == 0 and summary.exit_code == 0
    after = {p.name: p.stat().st_mtime_ns for p in store_root.rglob("*") if p.name != "prep_report.json"}
    assert after == before


def _finished(store: Path) -> list[Path]:
    return TrackStore(store, None).manifest_paths() if (store / "videos").exists() else []


def test_sigkill_then_rerun_finishes_without_redoing_finished_videos(synth_root, store_root, tmp_path):
    out = tmp_path / "store"
    command = [sys.executable, "-m", "asd_se", "prep", "--annotations", str(synth_root / "annotations"),
               "--videos", str(synth_root / "videos"), "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not _finished(out):
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(_finished(out))
    assert 1 <= finished < 3, "the kill should land between the first and the last video"
    summary = _prep(synth_root, out)
    assert summary.videos_prepared_now == 3 - finished
    assert (out / "index.jsonl").read_bytes() == (store_root / "index.jsonl").read_bytes()
    assert not [p for p in out.rglob("*") if ".part" in p.name], "no partial files may remain"


def test_shards_merge_to_the_single_run_index(synth_root, store_root, tmp_path):
    for index in range(2):
        summary = _prep(synth_root, tmp_path / f"shard{index}", shard=(index, 2))
        assert summary.index_tracks is None and summary.exit_code == 0
    merge(tmp_path / "merged", [tmp_path / "shard0", tmp_path / "shard1"])
    assert (tmp_path / "merged" / "index.jsonl").read_bytes() == (store_root / "index.jsonl").read_bytes()
    # The other way: shards into one shared folder, then a plain run builds the index without redoing work.
    for index in range(2):
        _prep(synth_root, tmp_path / "shared", shard=(index, 2))
    assert _prep(synth_root, tmp_path / "shared").videos_prepared_now == 0
    assert (tmp_path / "shared" / "index.jsonl").read_bytes() == (store_root / "index.jsonl").read_bytes()


def test_index_lists_only_the_videos_of_the_current_annotations(synth_root, store_root, tmp_path):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(store_root, store)
    summary = prepare(PrepConfig((synth_root / "annotations" / "train.csv",), synth_root / "videos", store))
    assert summary.videos_prepared_now == 0 and summary.videos_not_indexed == 1
    assert "1 video(s) in the store are not in these annotations" in summary.render()
    assert {m.split for m in TrackStore.open(store).tracks()} == {"train"}
    assert len(list((store / "videos").glob("*.npz"))) == 3  # nothing deleted


def _run_cli(synth: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["prep", "--annotations", str(synth / "annotations"), "--videos", str(synth / "videos"),
                 "--out", str(out)])
    return code, capsys.readouterr().out


def _first_row_line(synth: Path, video_id: str) -> int:
    with open(synth / "annotations" / "train.csv", newline="") as handle:
        return next(i for i, r in enumerate(csv.reader(handle), 1) if r[0] == video_id)


def test_broken_videos_are_skipped_by_name_and_the_rest_prepared(synth_copy, tmp_path, capsys):
    videos = sorted((synth_copy / "videos").glob("*.mp4"))
    (videos[0]).write_bytes(b"")  # zero-byte
    (videos[1]).write_text("this is not a video\n")  # text file named .mp4
    code, out = _run_cli(synth_copy, tmp_path / "store", capsys)
    assert code == EXIT_SKIPPED
    line = _first_row_line(synth_copy, videos[0].stem)
    assert f"train.csv:{line}: {videos[0]}: file is empty (0 bytes)" in out
    assert f"{videos[1]}: not a readable media file" in out
    assert "videos: 1/3 in store" in out
    assert len(TrackStore.open(tmp_path / "store").tracks()) > 0


def test_missing_video_and_video_without_audio(synth_copy, tmp_path, capsys):
    from asd_se.core.writer import VideoWriter

    videos = sorted((synth_copy / "videos").glob("*.mp4"))
    videos[0].unlink()
    silent = videos[1]
    with VideoWriter(silent, 64, 48, 25) as writer:  # same name, no audio stream
        for _ in range(200):
            writer.write_frame(np.full((48, 64, 3), 128, np.uint8))
    code, out = _run_cli(synth_copy, tmp_path / "store", capsys)
    assert code == EXIT_SKIPPED
    assert f"no video file for {videos[0].stem}" in out
    assert f"{silent}: has no audio stream" in out


def test_truncated_mp4_without_its_index_is_named_unreadable(synth_copy, tmp_path, capsys):
    video = sorted((synth_copy / "videos").glob("*.mp4"))[0]
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # the moov atom sits at the end: nothing is decodable
    code, out = _run_cli(synth_copy, tmp_path / "store", capsys)
    assert code == EXIT_SKIPPED
    assert f"{video}: not a readable media file" in out and "videos: 2/3 in store" in out


def _remux_to_mkv(source: Path) -> Path:
    target = source.with_suffix(".mkv")
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    source.unlink()
    return target


def test_truncated_streamable_video_keeps_what_decodes(synth_copy, tmp_path, capsys):
    video = _remux_to_mkv(sorted((synth_copy / "videos").glob("*.mp4"))[0])
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.6)])
    code, out = _run_cli(synth_copy, tmp_path / "store", capsys)
    assert code == EXIT_SKIPPED
    assert "is past the end of" in out and str(video) in out
    kept = [m for m in TrackStore.open(tmp_path / "store").tracks() if m.video_id == video.stem]
    assert kept and 0 < max(m.start + m.frames / 25 for m in kept) < 6.0 * 0.8


def test_rows_past_the_end_and_hostile_ids_never_escape_the_store(synth_copy, tmp_path, capsys):
    train = synth_copy / "annotations" / "train.csv"
    with open(train, newline="") as handle:
        rows = list(csv.reader(handle))
    late = rows[0][:1] + ["999.000"] + rows[0][2:]
    hostile = ["../../escape"] + rows[0][1:7] + ["x:1"]
    with open(train, "a", newline="") as handle:
        csv.writer(handle).writerows([late, hostile])
    out = tmp_path / "inner" / "store"
    code, text = _run_cli(synth_copy, out, capsys)
    assert code == EXIT_SKIPPED
    assert f"train.csv:{len(rows) + 1}: timestamp 999.000 is past the end of" in text
    assert f"train.csv:{len(rows) + 2}: video_id '../../escape' has characters not allowed" in text
    assert sorted(p.name for p in (tmp_path / "inner").iterdir()) == ["store"]
    assert not (tmp_path / "escape").exists()


def test_a_mouth_box_sidecar_given_as_annotations_is_skipped_with_one_line(synth_copy, tmp_path, capsys):
    sidecar = tmp_path / "val_mouth_boxes.csv"  # as older synthetic sets laid it out, among the annotations
    (synth_copy / "mouth_boxes" / "val.csv").rename(sidecar)
    code = main(["prep", "--annotations", str(synth_copy / "annotations" / "val.csv"), str(sidecar),
                 "--videos", str(synth_copy / "videos"), "--out", str(tmp_path / "store")])
    out = capsys.readouterr().out
    assert code == EXIT_SKIPPED
    assert f"{sidecar}: looks like a mouth-box sidecar" in out
    assert "problem(s)" in out and "1 problem(s)" in out and "columns" not in out
