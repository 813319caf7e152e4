"""Who speaks when (segments, RTTM), the render document, ground truth and the review page's data; the
``review`` and ``segments`` commands. The page in a real browser: ``tests/test_review_browser.py``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from asd_se.cli import main
from asd_se.core.errors import ConfigError, InputError
from asd_se.core.metrics import average_precision
from asd_se.render.pipeline import RenderSettings, render_video
from asd_se.review.document import VERSION, decode_maps, encode_maps, read_render
from asd_se.review.page import page_data, review_html
from asd_se.review.segments import (
    SegmentSettings,
    document_segments,
    hysteresis,
    to_csv,
    to_json,
    to_rttm,
    track_segments,
)
from asd_se.review.truth import error_spans, summarise

FAST = RenderSettings(preset="ultrafast")


@pytest.fixture(scope="module")
def annotated_render(synth_root, checkpoint, tmp_path_factory) -> Path:
    """The synthetic val video rendered against its annotations: the render document's JSON path."""
    from asd_se.core.annotations import read_csv

    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    out = tmp_path_factory.mktemp("review") / "clip.mp4"
    render_video(synth_root / "videos" / f"{rows[0].video_id}.mp4", checkpoint, out,
                 synth_root / "annotations" / "val.csv", FAST, progress=False)
    return out.with_suffix(".json")


def test_hysteresis_starts_at_on_and_ends_below_off():
    probs = np.array([0.1, 0.55, 0.65, 0.5, 0.45, 0.39, 0.5, 0.59, 0.7, 0.2])
    assert hysteresis(probs, on=0.6, off=0.4).tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]


def test_segments_fill_short_pauses_then_drop_short_segments():
    times = np.arange(100) * 0.1  # 10 fps
    probs = np.zeros(100)
    probs[10:20] = 0.9  # 1.0-2.0 s
    probs[22:30] = 0.9  # after a 0.2 s pause: merged into 1.0-3.0 s
    probs[50:52] = 0.9  # 5.0-5.2 s: 0.2 s alone
    probs[80:90] = 0.9  # 8.0-9.0 s, after a long pause: separate
    settings = SegmentSettings(on=0.6, off=0.4, min_gap=0.3, min_speech=0.25)
    segments = track_segments("a", times, probs, 0.1, settings)
    assert [(s.start, s.end) for s in segments] == [(1.0, 3.0), (8.0, 9.0)]
    assert segments[0].mean_prob == pytest.approx(np.mean(probs[10:30]), abs=1e-4)
    keep_short = track_segments("a", times, probs, 0.1, SegmentSettings(min_gap=0.0, min_speech=0.0))
    assert [(s.start, s.end) for s in keep_short] == [(1.0, 2.0), (2.2, 3.0), (5.0, 5.2), (8.0, 9.0)]


def test_segment_settings_are_checked():
    with pytest.raises(ConfigError, match="off <= on"):
        SegmentSettings(on=0.3, off=0.6)
    with pytest.raises(ConfigError, match="min_gap must be >= 0"):
        SegmentSettings(min_gap=-1)


def test_rttm_has_the_ten_standard_fields_one_speaker_per_track():
    times = np.arange(50) * 0.04
    first = track_segments("face 1", times, np.r_[np.ones(25), np.zeros(25)], 0.04)
    second = track_segments("face2", times, np.r_[np.zeros(25), np.ones(25)], 0.04)
    lines = to_rttm(second + first, "my clip").splitlines()
    assert [line.split() for line in lines] == [
        ["SPEAKER", "my_clip", "1", "0.000", "1.000", "<NA>", "<NA>", "face_1", "<NA>", "<NA>"],
        ["SPEAKER", "my_clip", "1", "1.000", "1.000", "<NA>", "<NA>", "face2", "<NA>", "<NA>"]]
    assert to_csv(first).splitlines() == ["track,start,end,duration,mean_prob", "face 1,0.000,1.000,1.000,1.0000"]
    assert json.loads(to_json(first, SegmentSettings()))["segments"][0]["end"] == 1.0


def test_maps_survive_8_bit_quantisation():
    maps = np.random.default_rng(0).random((30, 7, 7)).astype(np.float32)
    entry = encode_maps(maps)
    assert entry["shape"] == [30, 7, 7] and len(base64.b64decode(entry["base64"])) == 30 * 49  # a byte a value
    assert np.abs(decode_maps(entry) - maps).max() <= 0.5 / 255 + 1e-7


def test_error_spans_ap_and_accuracy_from_ground_truth_rows():
    times = np.arange(10) * 0.04
    truth = np.stack([times, [1, 1, 1, 0, 0, 0, 0, 1, 1, 1], [0.9, 0.8, 0.3, 0.2, 0.7, 0.6, 0.1, 0.2, 0.3, 0.9]], 1)
    spans = error_spans("a", truth)
    assert [(s.kind, s.start, s.end) for s in spans] == [("FN", 0.08, 0.12), ("FP", 0.16, 0.24), ("FN", 0.28, 0.36)]
    summary = summarise([{"name": "a", "truth": truth.tolist()}])
    assert summary.ap == pytest.approx(average_precision(truth[:, 2], truth[:, 1] > 0))
    assert summary.accuracy == pytest.approx(5 / 10) and summary.rows == 10
    assert summarise([{"name": "a", "frames": []}]) is None


def test_render_writes_segments_truth_and_a_page(annotated_render):
    document = read_render(annotated_render)
    assert document.data["format"] == "asd-se render" and document.data["version"] == VERSION
    assert not document.missing
    track = document.tracks[0]
    maps = decode_maps(track["maps"])
    assert maps.shape[0] == max(f["sample"] for f in track["frames"]) + 1 and 0 <= maps.min() <= maps.max() <= 1
    assert all(len(f["region"]) == 3 for f in track["frames"])
    rows = sum(len(t["truth"]) for t in document.tracks)
    assert rows == len(annotated_render.with_suffix(".csv").read_text().splitlines())  # one per scored CSV row
    rttm = annotated_render.with_suffix(".rttm").read_text()
    assert rttm == to_rttm(document_segments(document), document.data["video_id"])
    assert document.data["video_id"] == document.tracks[0]["name"].split(":")[0]  # AVA entity ids: VIDEO:N
    html = annotated_render.with_suffix(".html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched
    data = page_data(document, annotated_render.with_suffix(".html"))
    assert [v["src"] for v in data["videos"]][-1] == "clip.mp4"
    assert len(data["tracks"]) == len(document.tracks) and data["truth"]["rows"] == rows


def test_segments_command_formats_and_refuses_to_overwrite(annotated_render, tmp_path, capsys):
    assert main(["segments", str(annotated_render)]) == 0
    assert capsys.readouterr().out == annotated_render.with_suffix(".rttm").read_text()
    assert main(["segments", str(annotated_render), "--segments-on", "0", "--segments-off", "0"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]  # every track speaks throughout
    document = read_render(annotated_render)
    assert sorted(line[7] for line in lines) == sorted(t["name"] for t in document.tracks)
    assert {line[1] for line in lines} == {document.data["video_id"]}
    out = tmp_path / "segments.csv"
    assert main(["segments", str(annotated_render), "--format", "csv", "-o", str(out),
                 "--segments-on", "0.3", "--segments-off", "0.2"]) == 0
    assert out.read_text().startswith("track,start,end,duration,mean_prob\n")
    before = out.read_text()
    assert main(["segments", str(annotated_render), "--format", "json", "-o", str(out)]) == 1
    assert "exists; give --force" in capsys.readouterr().err and out.read_text() == before
    assert main(["segments", str(annotated_render), "--format", "json", "-o", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["settings"]["on"] == 0.6


def test_review_command_refuses_to_overwrite_and_writes_elsewhere(annotated_render, tmp_path, capsys):
    page = annotated_render.with_suffix(".html")
    before = page.read_text()
    assert main(["review", str(annotated_render)]) == 1
    assert f"{page}: exists" in capsys.readouterr().err and page.read_text() == before
    elsewhere = tmp_path / "sub" / "page.html"
    elsewhere.parent.mkdir()
    assert main(["review", str(annotated_render), "-o", str(elsewhere)]) == 0
    data = json.loads(elsewhere.read_text().split('id="data">', 1)[1].split("</script>", 1)[0])
    assert (elsewhere.parent / data["videos"][-1]["src"]).resolve() == annotated_render.with_suffix(".mp4").resolve()


@pytest.mark.parametrize("content, message", [
    ("not json", "not JSON"),
    ('{"predictions": []}', "made by another tool"),
    ('{"format": "other", "tracks": []}', "a 'other' file"),
    ('{"format": "asd-se render", "version": 99, "tracks": []}', "newer asd-se"),
    ('{"format": "asd-se render", "version": 2, "tracks": [{"name": "a"}]}', "without 'frames'"),
])
def test_foreign_or_damaged_json_is_refused_by_name(content, message, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=message):
        read_render(bad)
    assert main(["review", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err and not bad.with_suffix(".html").exists()


def test_an_older_render_a_missing_video_and_no_faces_give_pages_that_say_so(annotated_render, tmp_path):
    old = json.loads(annotated_render.read_text())
    for key in ("format", "version"):
        old.pop(key)
    for track in old["tracks"]:
        track.pop("maps")
        for frame in track["frames"]:
            frame.pop("sample"), frame.pop("region")
    old["input"] = str(tmp_path / "gone.mp4")
    (tmp_path / "old.json").write_text(json.dumps(old))
    data = page_data(read_render(tmp_path / "old.json"), tmp_path / "old.html")
    notes = " | ".join(data["notes"])
    assert "older asd-se" in notes and "no heatmaps" in notes
    assert "gone.mp4: the input video is not there" in notes and "old.mp4: the rendered MP4 is not beside" in notes
    assert data["videos"] == [] and "maps" not in data["tracks"][0]
    empty = dict(old, tracks=[], format="asd-se render", version=VERSION)
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    data = page_data(read_render(tmp_path / "empty.json"), tmp_path / "empty.html")
    assert any("no faces were found" in n for n in data["notes"]) and data["truth"] is None
    assert "</script><script>" not in review_html(dict(data, title="</script><script>alert(1)"))


def test_a_render_given_a_relative_input_path_records_where_it_is(synth_root, checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(synth_root)
    video = next(Path("videos").glob("*.mp4"))
    render_video(video, checkpoint, tmp_path / "rel.mp4", settings=FAST, progress=False)
    monkeypatch.chdir(tmp_path)  # the page is made again from elsewhere
    assert main(["review", str(tmp_path / "rel.json"), "-o", "again.html"]) == 0
    document = read_render(tmp_path / "rel.json")
    assert Path(document.data["input"]) == (synth_root / video).resolve()
    assert page_data(document, tmp_path / "again.html")["videos"][0]["overlays"]  # the source plays
