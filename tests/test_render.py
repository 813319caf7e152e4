"""``asd-se render`` on synthetic videos: faces found, timing and audio kept, annotations mode, bad inputs."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from asd_se.cli import main
from asd_se.core.annotations import read_csv
from asd_se.core.ava import ava_key
from asd_se.core.boxes import iou
from asd_se.core.media import DecodedVideo, decode, demux, probe
from asd_se.core.sampling import nearest_frames, sample_grid
from asd_se.core.writer import VideoWriter
from asd_se.explain import ChannelSelection
from asd_se.models.loading import load_model
from asd_se.render import pipeline
from asd_se.render.pipeline import RenderSettings, output_paths, render_video
from asd_se.render.scores import TrackResult, same_channels_everywhere
from asd_se.training.evaluate import predict_split
from asd_se.video.draw import blend_heatmap
from data_prep.store import TrackStore

FAST = RenderSettings(preset="ultrafast")


@pytest.fixture(scope="module")
def val_video(synth_root) -> tuple[Path, list]:
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    return synth_root / "videos" / f"{rows[0].video_id}.mp4", rows


@pytest.fixture(scope="module")
def rendered(val_video, checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "out.mp4"
    result = render_video(val_video[0], checkpoint, out, settings=FAST, progress=False)
    return out, result, json.loads(out.with_suffix(".json").read_text())


def _frame_times(path: Path) -> list[float]:
    return [t for t, _ in decode(path, ("gray",), with_audio=False)]


def _transcode(src: Path, dst: Path, video_codec: str = "libx264", audio_codec: str | None = "aac",
               layout: str = "stereo", size: tuple[int, int] | None = None, frames: int = 50,
               times_ms: list[int] | None = None) -> Path:
    """Re-encode the first ``frames`` frames (and their audio) of ``src`` into any container/codec PyAV
    writes; ``times_ms`` gives variable frame timestamps."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as target:
        video_in = source.streams.video[0]
        video = target.add_stream(video_codec, rate=video_in.average_rate)
        video.width, video.height = size or (video_in.width // 2 * 2, video_in.height // 2 * 2)
        video.pix_fmt = "yuv420p" if video.width % 2 == 0 and video.height % 2 == 0 else "yuv444p"
        video.codec_context.time_base = Fraction(1, 1000) if times_ms else 1 / video_in.average_rate
        audio = target.add_stream(audio_codec, rate=48000, layout=layout) if audio_codec else None
        count = 0
        for frame in source.decode(video_in, *([source.streams.audio[0]] if audio else [])):
            if isinstance(frame, av.AudioFrame):
                if frame.time < frames / float(video_in.average_rate):
                    frame.pts = None
                    target.mux(audio.encode(frame))
                continue
            if count == frames:
                continue
            image = cv2.resize(frame.to_ndarray(format="rgb24"), (video.width, video.height))
            new = av.VideoFrame.from_ndarray(image, format="rgb24")
            new.pts = times_ms[count] if times_ms else count
            target.mux(video.encode(new))
            count += 1
        target.mux(video.encode(None))
        if audio:
            target.mux(audio.encode(None))
    return dst


def test_tracks_match_the_faces_present(rendered, val_video):
    out, result, report = rendered
    info = probe(val_video[0])
    scale = np.array([info.width, info.height] * 2)
    found = {}
    for track in report["tracks"]:
        for record in track["frames"]:
            found.setdefault(record["frame"], []).append(np.array(record["box"]))
    ious, stray = [], 0
    for row in val_video[1]:
        if row.box[0] > 0.001 and row.box[2] < 0.999:  # fully inside the frame
            frame = int(round(row.timestamp * info.fps))
            boxes = found.get(frame, [])
            ious.append(max((iou(np.array(row.box)[None] * scale, b[None])[0, 0] for b in boxes), default=0))
    for frame, boxes in found.items():
        truth = [np.array(r.box) * scale for r in val_video[1] if int(round(r.timestamp * info.fps)) == frame]
        stray += sum(max((iou(b[None], t[None])[0, 0] for t in truth), default=0) < 0.3 for b in boxes)
    assert len(ious) > 100 and np.mean(np.array(ious) >= 0.5) >= 0.95, np.percentile(ious, [1, 5, 50])
    assert stray <= 0.02 * sum(map(len, found.values()))
    assert result.tracks == len(report["tracks"]) == len({r.entity_id for r in val_video[1]})


def test_output_keeps_frames_timing_and_audio(rendered, val_video):
    out, result, report = rendered
    assert _frame_times(out) == pytest.approx(_frame_times(val_video[0]), abs=1e-3)
    source, output = probe(val_video[0]), probe(out)
    assert (output.width, output.height) == (source.width, source.height)
    assert abs(output.duration - source.duration) <= 1.5 / source.fps
    with av.open(str(val_video[0])) as a, av.open(str(out)) as b:
        assert b.streams.video[0].codec_context.name == "h264" and b.streams.audio[0].codec_context.name == "aac"
        assert b.streams.audio[0].sample_rate == a.streams.audio[0].sample_rate
        assert b.streams.audio[0].channels == a.streams.audio[0].channels
    original, copied = DecodedVideo(), DecodedVideo()
    list(decode(val_video[0], (), result=original))
    list(decode(out, (), result=copied))
    assert abs(len(copied.audio) - len(original.audio)) < 0.05 * 16000
    n = min(len(copied.audio), len(original.audio))
    assert np.corrcoef(copied.audio[:n], original.audio[:n])[0, 1] > 0.9  # same sound, same place
    assert report["frames"] == result.frames == len(_frame_times(out)) and report["has_audio"]


def test_report_csv_and_timeline(rendered, val_video):
    out, _, report = rendered
    paths = output_paths(out)
    assert all(p.exists() for p in paths.values())
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging or temp files left
    record = report["tracks"][0]["frames"][10]
    assert {"frame", "time", "box", "prob", "se_channels", "heatmap_peak"} <= set(record)
    for track in report["tracks"]:
        for record in track["frames"]:
            x1, y1, x2, y2 = record["box"]
            side = 1.4 * max(x2 - x1, y2 - y1) + 2  # the crop region the map covers
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            assert abs(record["heatmap_peak"][0] - cx) <= side / 2 and abs(record["heatmap_peak"][1] - cy) <= side / 2
            assert len(record["se_channels"]) >= 1
    rows = [line.split(",") for line in paths["csv"].read_text().splitlines()]
    assert len(rows) == sum(len(t["frames"]) for t in report["tracks"])
    assert all(len(fields) == 9 and fields[6] == "SPEAKING_AUDIBLE" for fields in rows)
    # the CSV and the JSON give every frame the same probability, joined by (entity, time), not by position
    scores = {(fields[7], round(float(fields[1]) * 1000)): float(fields[8]) for fields in rows}
    for track in report["tracks"]:
        entity = f"{Path(report['input']).stem}:{track['name']}"
        for record in track["frames"]:
            ms = round(record["time"] * 1000)  # the JSON keeps 0.1 ms, the CSV 1 ms: match within a millisecond
            score = next(scores[(entity, t)] for t in (ms, ms - 1, ms + 1) if (entity, t) in scores)
            assert score == pytest.approx(record["prob"], abs=1e-4)


def test_annotations_mode_uses_exactly_the_given_boxes(val_video, checkpoint, synth_root, tmp_path):
    video, rows = val_video
    out = tmp_path / "gt.mp4"
    render_video(video, checkpoint, out, synth_root / "annotations" / "val.csv", settings=FAST, progress=False)
    report = json.loads(out.with_suffix(".json").read_text())
    info = probe(video)
    assert report["mode"] == "annotations"
    assert {t["name"] for t in report["tracks"]} == {r.entity_id for r in rows}
    by_key = {(t["name"], r["frame"]): r["box"] for t in report["tracks"] for r in t["frames"]}
    for row in rows:
        box = by_key[(row.entity_id, int(round(row.timestamp * info.fps)))]
        assert np.allclose(box, np.array(row.box) * np.array([info.width, info.height] * 2), atol=0.06)
    predicted = {(r[0], r[1], r[7]): r[2:6] for r in (line.split(",") for line in
                                                       out.with_suffix(".csv").read_text().splitlines())}
    assert set(predicted) == {(r.video_id, r.timestamp_text, r.entity_id) for r in rows}  # same keys, all rows
    assert all([float(v) for v in predicted[(r.video_id, r.timestamp_text, r.entity_id)]] == list(r.box)
               for r in rows)


@pytest.mark.parametrize("suffix, video_codec, audio_codec, layout", [
    (".mkv", "libx264", "aac", "5.1"), (".webm", "libvpx-vp9", "libopus", "stereo"),
    (".avi", "mpeg4", "pcm_s16le", "mono"), (".mov", "libx264", "aac", "stereo")])
def test_any_container_codec_and_audio_layout(val_video, checkpoint, tmp_path, suffix, video_codec, audio_codec,
                                              layout):
    clip = _transcode(val_video[0], tmp_path / f"clip{suffix}", video_codec, audio_codec, layout, frames=40)
    result = render_video(clip, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert result.frames == 40 and result.tracks >= 1
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert output.streams.audio[0].layout.name == layout


def test_variable_frame_rate_and_odd_size_keep_their_timing(val_video, checkpoint, tmp_path):
    gaps = np.random.default_rng(0).choice([20, 33, 40, 67], size=60)
    times_ms = [int(v) for v in np.concatenate([[0], np.cumsum(gaps[:-1])])]
    clip = _transcode(val_video[0], tmp_path / "vfr.mp4", size=(301, 171), frames=60, times_ms=times_ms)
    render_video(clip, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert _frame_times(tmp_path / "out.mp4") == pytest.approx(_frame_times(clip), abs=1e-3)
    assert (probe(tmp_path / "out.mp4").width, probe(tmp_path / "out.mp4").height) == (301, 171)


def test_video_without_audio_renders_with_a_warning(val_video, checkpoint, tmp_path):
    silent = tmp_path / "silent.mp4"
    with VideoWriter(silent, 427, 241, 25) as writer:
        for _, (_, (image,)) in zip(range(40), decode(val_video[0], ("bgr24",), with_audio=False)):
            writer.write_frame(cv2.resize(image, (427, 241)))
    result = render_video(silent, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    report = json.loads((tmp_path / "out.json").read_text())
    assert not report["has_audio"] and any("no audio stream" in n for n in result.notes)
    with av.open(str(tmp_path / "out.mp4")) as output:
        assert not output.streams.audio and output.streams.video[0].frames == 40


def test_no_faces_still_writes_the_output_with_a_note(checkpoint, tmp_path):
    blank = tmp_path / "blank.mp4"
    with VideoWriter(blank, 160, 120, 25, audio_rate=16000) as writer:
        for i in range(30):
            writer.write_frame(np.full((120, 160, 3), 90 + i, np.uint8))
        writer.write_audio(np.zeros((1, 19200), np.float32))
    result = render_video(blank, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert result.tracks == 0 and any("no faces found" in n for n in result.notes)
    assert len(_frame_times(tmp_path / "out.mp4")) == 30 and (tmp_path / "out.csv").read_text() == ""
    assert json.loads((tmp_path / "out.json").read_text())["tracks"] == []


def test_tiny_faces_and_a_4k_input(val_video, checkpoint, tmp_path):
    tiny = _transcode(val_video[0], tmp_path / "tiny.mp4", size=(48, 28), frames=30)
    result = render_video(tiny, checkpoint, tmp_path / "tiny_out.mp4", settings=FAST, progress=False)
    assert result.frames == 30 and (tmp_path / "tiny_out.json").exists()
    big = _transcode(val_video[0], tmp_path / "big.mp4", size=(3840, 2160), frames=16)
    result = render_video(big, checkpoint, tmp_path / "big_out.mp4", settings=FAST, progress=False)
    assert result.frames == 16 and result.tracks >= 1
    assert (probe(tmp_path / "big_out.mp4").width, probe(tmp_path / "big_out.mp4").height) == (3840, 2160)


def test_truncated_files(val_video, checkpoint, tmp_path):
    mkv = _transcode(val_video[0], tmp_path / "clip.mkv", frames=60)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 3])
    result = render_video(cut, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert 20 <= result.frames < 60  # what decodes is rendered
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes(val_video[0].read_bytes()[: val_video[0].stat().st_size // 2])
    assert main(["render", str(cut_mp4), "--checkpoint", str(checkpoint), "-o", str(tmp_path / "x.mp4")]) == 1
    assert not (tmp_path / "x.mp4").exists()


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"), ("empty", "empty (0 bytes)"), ("text", "not a readable media file"),
    ("audio_only", "has no video stream"), ("same_as_input", "is an input of this command"),
    ("no_folder", "output folder does not exist"), ("not_checkpoint", "not a readable torch checkpoint")])
def test_bad_inputs_fail_clearly_and_leave_nothing(case, message, val_video, checkpoint, tmp_path, capsys):
    video, out, model = tmp_path / "in.mp4", tmp_path / "out.mp4", checkpoint
    if case != "missing":
        video.write_bytes(val_video[0].read_bytes())
    if case == "empty":
        video.write_bytes(b"")
    elif case == "text":
        video.write_text("this is a text file, not a video\n")
    elif case == "audio_only":
        _audio_only(video)
    elif case == "same_as_input":
        out = video
    elif case == "no_folder":
        out = tmp_path / "nowhere" / "out.mp4"
    elif case == "not_checkpoint":
        model = tmp_path / "model.pt"
        model.write_text("not a checkpoint")
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert main(["render", str(video), "--checkpoint", str(model), "-o", str(out)]) == 1
    error = capsys.readouterr().err
    assert message in error and (str(video) in error or str(out.parent) in error or str(model) in error), error
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing written or lost


def test_interrupted_render_leaves_no_output_and_no_temp_files(val_video, checkpoint, tmp_path, monkeypatch):
    calls = []

    def interrupt(*args):
        calls.append(1)
        if len(calls) == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "draw_face", interrupt)
    with pytest.raises(KeyboardInterrupt):
        render_video(val_video[0], checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_side_panel_and_exact_rank_selection(val_video, checkpoint, tmp_path):
    settings = RenderSettings(preset="ultrafast", panel=True, se=ChannelSelection("rank", 0.05))
    clip = _transcode(val_video[0], tmp_path / "clip.mp4", frames=30)
    render_video(clip, checkpoint, tmp_path / "out.mp4", settings=settings, progress=False)
    info, output = probe(clip), probe(tmp_path / "out.mp4")
    assert output.width > info.width and output.height == info.height
    report = json.loads((tmp_path / "out.json").read_text())
    channels = {len(r["se_channels"]) for t in report["tracks"] for r in t["frames"]}
    assert channels == {round(0.05 * 192)}


def test_demux_yields_audio_and_video_in_one_pass(val_video):
    decoded = DecodedVideo()
    kinds = {type(frame).__name__ for frame in demux(val_video[0], True, decoded)}
    assert kinds == {"VideoFrame", "AudioFrame"} and decoded.warnings == []


def test_a_shot_cut_starts_new_tracks(synth_root, checkpoint, tmp_path):
    videos = sorted((synth_root / "videos").glob("*.mp4"))[:2]
    joined = tmp_path / "joined.mp4"
    with VideoWriter(joined, 320, 180, 25, audio_rate=16000) as writer:
        for video in videos:
            for _, (_, (image,)) in zip(range(40), decode(video, ("bgr24",), with_audio=False)):
                writer.write_frame(cv2.resize(image, (320, 180)))
        writer.write_audio(np.zeros((1, 16000 * 80 // 25), np.float32))
    result = render_video(joined, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    report = json.loads((tmp_path / "out.json").read_text())
    assert any("1 shot cuts" in note for note in result.notes)
    assert report["tracks"] and all(t["last_frame"] < 40 or t["first_frame"] >= 40 for t in report["tracks"])


def test_nearest_frames_assigns_each_sample_to_the_closest_frame():
    frame_times = np.cumsum(np.random.default_rng(1).uniform(0.01, 0.07, 200))
    samples = sample_grid(frame_times[3], frame_times[-1] + 0.2)
    assigned = {}
    for time, index, chosen in nearest_frames(samples, zip(frame_times, range(200)), tail=0.05):
        assigned.update({int(k): index for k in chosen})
    for k, t in enumerate(samples):
        if t <= frame_times[-1] + 0.05:
            assert assigned[k] == int(np.argmin(np.abs(frame_times - t)))
        else:
            assert k not in assigned  # past the end: never assigned


def test_heatmap_is_blended_inside_the_face_box_only():
    image = np.full((120, 160, 3), 100, np.uint8)
    box = np.array([50.0, 30.0, 90.0, 80.0])
    drawn = image.copy()
    blend_heatmap(drawn, box, np.random.default_rng(0).uniform(0, 1, (7, 7)), alpha=0.6)
    changed = np.argwhere((drawn != image).any(axis=2))
    assert len(changed) > 0.9 * 40 * 50
    assert changed[:, 0].min() >= 30 and changed[:, 0].max() < 80
    assert changed[:, 1].min() >= 50 and changed[:, 1].max() < 90


def test_render_with_a_gradient_baseline(val_video, checkpoint, tmp_path):
    clip = _transcode(val_video[0], tmp_path / "clip.mp4", frames=30)
    render_video(clip, checkpoint, tmp_path / "out.mp4", settings=RenderSettings(preset="ultrafast",
                                                                                 explainer="gradcam"), progress=False)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["explainer"] == "gradcam" and "gradcam_maps" in report["timings_s"]
    assert all("heatmap_peak" in r and "se_channels" not in r for t in report["tracks"] for r in t["frames"])


def test_an_se_selection_that_never_changes_is_said():
    def result(probs, channels):
        return TrackResult(np.array(probs), np.array(probs), None, np.zeros((len(probs), 2)), channels)

    same = [[4, 9, 2]] * 3
    assert same_channels_everywhere([result([0.9, 0.2, 0.1], same), result([0.3], [[4, 9, 2]])]) == [4, 9, 2]
    assert same_channels_everywhere([result([0.9, 0.2, 0.1], same[:2] + [[4, 9]])]) is None  # one frame differs
    assert same_channels_everywhere([result([0.9, 0.8, 0.7], same)]) is None  # every decision alike: no evidence
    assert same_channels_everywhere([result([0.9, 0.2, 0.1], [[], [], []])]) is None  # no SE channels reported
    assert same_channels_everywhere([]) is None


def test_render_notes_a_fixed_se_selection(val_video, checkpoint, tmp_path, monkeypatch):
    clip = _transcode(val_video[0], tmp_path / "clip.mp4", frames=30)
    monkeypatch.setattr(pipeline, "same_channels_everywhere", lambda results: [7, 3])
    render_video(clip, checkpoint, tmp_path / "out.mp4", settings=RenderSettings(preset="ultrafast"), progress=False)
    notes = json.loads((tmp_path / "out.json").read_text())["notes"]
    assert any("selected the same 2 channels for every face and frame" in note for note in notes)


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_damage_in_the_middle_is_reported_and_what_decodes_is_rendered(val_video, checkpoint, tmp_path, suffix):
    clip = _transcode(val_video[0], tmp_path / f"clip{suffix}", "mpeg4" if suffix == ".avi" else "libx264",
                      frames=120)
    data = bytearray(clip.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 3000, 200):
        data[offset:offset + 40] = b"\xff" * 40  # garbage over a few packets mid-stream
    damaged = tmp_path / f"damaged{suffix}"
    damaged.write_bytes(bytes(data))
    result = render_video(damaged, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert 30 <= result.frames <= 120 and len(_frame_times(tmp_path / "out.mp4")) == result.frames
    assert any(str(damaged) in note and ("corrupt packet" in note or "decoding stopped" in note)
               for note in result.notes), result.notes


def test_render_and_evaluate_give_a_track_the_same_scores(trained_run, store_root, synth_root, val_video,
                                                         tmp_path):
    """One scoring engine: render (crops cut from the decoded video) and evaluate (the store's JPEG crops)
    score the same annotated track alike; JPEG at quality 90 is the only difference between their inputs."""
    checkpoint = trained_run / "best.pt"
    model, _ = load_model(checkpoint, torch.device("cpu"))
    evaluated = {p.key: p.score for p in predict_split(model, TrackStore.open(store_root), "val",
                                                       torch.device("cpu"), progress=False)}
    out = tmp_path / "gt.mp4"
    render_video(val_video[0], checkpoint, out, synth_root / "annotations" / "val.csv", settings=FAST,
                 progress=False)
    rendered = {ava_key(r[0], r[1], r[7]): float(r[8]) for r in csv.reader(out.with_suffix(".csv").open())}
    assert rendered.keys() <= evaluated.keys() and len(rendered) == len(val_video[1])
    differences = np.array([abs(score - evaluated[key]) for key, score in rendered.items()])
    assert differences.max() < 0.01 and differences.mean() < 0.002
    assert np.ptp(list(rendered.values())) > 0.01  # the scores vary, so agreeing is not trivial
