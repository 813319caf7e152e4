"""Prep on files shaped like AVA's movies: the annotated clip inside a longer file, a start time other than 0,
and every container / codec / channel layout the synthetic world writes."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

import asd_se.core.media as media
from asd_se.core.annotations import read_annotations
from asd_se.core.media import probe
from asd_se.core.writer import Encoding
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import Packaging, SynthConfig, make_dataset

PADDED = Packaging(lead=9.0, tail=5.0, start_time=1.3)


@pytest.fixture(scope="module")
def padded_root(tmp_path_factory) -> Path:
    """3 videos: a 4.8 s annotated clip inside 9 s before and 5 s after, starting at 1.3 s (16, 22.05, 44.1 kHz)."""
    root = tmp_path_factory.mktemp("padded")
    make_dataset(root, SynthConfig(videos=3, minutes=0.08, seed=4, size=(320, 240), packaging=PADDED), workers=2)
    return root


def _stores(root: Path, tmp_path: Path) -> tuple[Path, Path]:
    stores = []
    for seek in (True, False):
        out = tmp_path / f"store_seek_{seek}"
        summary = prepare(PrepConfig((root / "annotations",), root / "videos", out, seek=seek))
        assert summary.exit_code == 0, summary.render()
        stores.append(out / "videos")
    return stores[0], stores[1]


def test_padded_videos_hold_the_clip_inside_with_shifted_rows(padded_root):
    rows, problems = read_annotations([padded_root / "annotations"])
    assert not problems
    for video in sorted((padded_root / "videos").glob("*.mp4")):
        info = probe(video)
        assert info.start == pytest.approx(PADDED.start_time, abs=0.1)  # a container start time other than 0
        stamps = [r.timestamp for r in rows if r.video_id == video.stem]
        assert min(stamps) >= PADDED.lead - 0.05
        assert info.duration >= max(stamps) + PADDED.tail - 0.1


def test_span_decoding_stores_what_full_decoding_stores(padded_root, tmp_path):
    seeked, full = _stores(padded_root, tmp_path)
    names = sorted(p.name for p in seeked.glob("*.npz"))
    assert names == sorted(p.name for p in full.glob("*.npz")) and len(names) == 3
    for name in names:
        span_manifest = json.loads((seeked / name).with_suffix(".json").read_text())
        full_manifest = json.loads((full / name).with_suffix(".json").read_text())
        assert span_manifest["tracks"] == full_manifest["tracks"]  # rows, labels, frames, starts
        # the clip is a quarter of the file: span decoding decodes well under half of its frames
        assert span_manifest["facts"]["decoded_frames"] < 0.5 * full_manifest["facts"]["decoded_frames"]
        assert span_manifest["facts"]["span"] is not None and full_manifest["facts"]["span"] is None
        with np.load(seeked / name) as a, np.load(full / name) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                if key.endswith("_audio"):
                    x, y = a[key].astype(np.float64), b[key].astype(np.float64)
                    assert x.shape == y.shape
                    # resampling from 22.05/44.1 kHz may differ in rounding after a seek (16 kHz: bit-exact)
                    assert np.sqrt(np.mean((x - y) ** 2)) <= 0.05 * np.sqrt(np.mean(y ** 2))
                else:
                    assert np.array_equal(a[key], b[key]), f"{name}:{key}"
        assert np.array_equal(np.load(seeked / names[0])["t0_audio"], np.load(full / names[0])["t0_audio"])


@pytest.mark.parametrize("how", ["raises", "lands late"])
def test_a_container_that_cannot_seek_is_decoded_from_the_start_with_a_note(padded_root, tmp_path, monkeypatch, how):
    def broken_seek(container, seconds):
        if how == "raises":
            raise av.error.FFmpegError(1, "broken index")
        container.seek(int((seconds + 4.0) * av.time_base), backward=True, any_frame=False)

    monkeypatch.setattr(media, "_seek", broken_seek)
    out = tmp_path / "store"
    summary = prepare(PrepConfig((padded_root / "annotations",), padded_root / "videos", out))
    assert summary.tracks > 0 and summary.exit_code == 3  # finished, with the note as a problem
    assert any("decoded from the start instead" in p for p in summary.problems), summary.problems
    monkeypatch.undo()
    reference = tmp_path / "reference"
    prepare(PrepConfig((padded_root / "annotations",), padded_root / "videos", reference, seek=False))
    for npz in (out / "videos").glob("*.npz"):
        with np.load(npz) as a, np.load(reference / "videos" / npz.name) as b:
            for key in a.files:
                assert np.array_equal(a[key], b[key]) or key.endswith("_audio")


FORMATS = [  # every container, video codec, audio codec and channel count at least once
    ("mkv", "h264", "opus", 6),
    ("webm", "vp9", "vorbis", 2),
    ("mp4", "mpeg4", "aac", 1),
    ("mkv", "mpeg4", "vorbis", 1),
    ("webm", "vp9", "opus", 1),
    ("mp4", "h264", "aac", 6),
]
CODEC_NAMES = {"h264": "h264", "vp9": "vp9", "mpeg4": "mpeg4", "aac": "aac", "opus": "opus", "vorbis": "vorbis"}


@pytest.mark.parametrize("container,codec,audio,channels", FORMATS)
def test_every_container_and_codec_is_written_and_prepared(tmp_path, container, codec, audio, channels):
    packaging = Packaging(Encoding(container, codec, audio), channels, lead=2.0, tail=1.0, start_time=0.7)
    root = tmp_path / "data"
    make_dataset(root, SynthConfig(videos=1, minutes=0.05, seed=9, size=(256, 192), packaging=packaging))
    (video,) = (root / "videos").iterdir()
    assert video.suffix == f".{container}"
    info = probe(video)
    assert (info.video_codec, info.audio_codec) == (CODEC_NAMES[codec], CODEC_NAMES[audio])
    assert info.audio_channels == (2 if audio == "vorbis" else channels)  # FFmpeg's Vorbis: stereo only
    assert info.start == pytest.approx(0.7, abs=0.1)
    summary = prepare(PrepConfig((root / "annotations",), root / "videos", tmp_path / "store"))
    assert summary.exit_code == 0, summary.render()
    rows, _ = read_annotations([root / "annotations"])
    assert sum(summary.rows.values()) == len(rows) and summary.tracks >= 1
    with np.load(next((tmp_path / "store" / "videos").glob("*.npz"))) as data:
        audio_samples = data["t0_audio"].astype(np.float64)
    assert np.sqrt(np.mean(audio_samples ** 2)) > 100  # the soundtrack arrived (int16 units)


def test_impossible_packaging_is_refused():
    with pytest.raises(ValueError, match="webm cannot hold h264"):
        Packaging(Encoding("webm", "h264", "opus")).check()
    with pytest.raises(ValueError, match="mp4 cannot hold vorbis"):
        Packaging(Encoding("mp4", "h264", "vorbis")).check()
    with pytest.raises(ValueError, match="channels"):
        Packaging(channels=3).check()
