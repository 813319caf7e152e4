"""Phone videos (stored turned, a display matrix) come out upright in decode, prep and render; a render's audio
stays in sync with its picture for every container and audio codec synth writes, and for AVI with AC3 and MP3
audio — checked from the output's packet timestamps."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from asd_se.core.annotations import read_csv
from asd_se.core.media import decode, probe
from asd_se.core.writer import ALLOWED, Encoding, VideoWriter
from asd_se.render.pipeline import RenderSettings, render_video
from data_prep.prep import PrepConfig, prepare
from data_prep.store import TrackStore

FAST = RenderSettings(preset="ultrafast", review=False, detect_every=10)
CLIP_S = 1.6


@pytest.fixture(scope="module")
def clip(synth_root) -> tuple[Path, list]:
    """A synthetic val video and its annotation rows."""
    rows, _ = read_csv(synth_root / "annotations" / "val.csv")
    return synth_root / "videos" / f"{rows[0].video_id}.mp4", rows


def _frames(path: Path, seconds: float = CLIP_S) -> tuple[list[np.ndarray], float]:
    frames = [image for time, (image,) in decode(path, ("bgr24",), with_audio=False) if time < seconds]
    return frames, probe(path).fps


def _turned_copy(source: Path, target: Path, seconds: float = 30.0) -> Path:
    """``source`` stored as a phone stores a portrait clip: every frame turned a quarter clockwise, with a
    display matrix saying to turn it back (90° counterclockwise); the audio is copied as it is."""
    frames, fps = _frames(source, seconds)
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        height, width = frames[0].shape[:2]
        video = out.add_stream("libx264", rate=round(fps))
        video.width, video.height, video.pix_fmt = height, width, "yuv444p"  # any size
        video.set_display_rotation(90)
        audio = out.add_stream("aac", rate=inp.streams.audio[0].rate)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(image, -1)), format="bgr24")
            frame.pts = index
            out.mux(video.encode(frame))
        for frame in inp.decode(audio=0):
            if frame.time is not None and frame.time < len(frames) / fps:
                frame.pts = None
                out.mux(audio.encode(frame))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return target


def test_a_turned_phone_clip_is_decoded_upright(clip, tmp_path):
    turned = _turned_copy(clip[0], tmp_path / "phone.mp4", CLIP_S)
    original, _ = _frames(clip[0])
    upright, _ = _frames(turned)
    info = probe(turned)
    assert (info.width, info.height, info.rotation) == (original[0].shape[1], original[0].shape[0], 90)
    assert "stored turned" in info.rotation_note
    assert upright[0].shape == original[0].shape
    error = np.abs(upright[5].astype(int) - original[5]).mean()
    sideways = np.abs(np.rot90(upright[5], 2).astype(int) - original[5]).mean()
    assert error < 4 < sideways, (error, sideways)


def test_a_turned_clip_renders_upright_and_says_so(clip, checkpoint, tmp_path):
    turned = _turned_copy(clip[0], tmp_path / "phone.mp4", CLIP_S)
    result = render_video(turned, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    assert any("stored turned" in note for note in result.notes)
    out = probe(tmp_path / "out.mp4")
    source = probe(clip[0])
    assert (out.width, out.height, out.rotation) == (source.width, source.height, 0)


def test_prep_of_a_turned_clip_cuts_the_upright_faces(clip, tmp_path):
    video, rows = clip
    folders = {}
    for name, path in (("upright", video), ("turned", None)):
        videos = tmp_path / name / "videos"
        videos.mkdir(parents=True)
        target = videos / video.name
        _turned_copy(video, target) if path is None else target.symlink_to(video)
        annotations = tmp_path / name / "val.csv"
        annotations.write_text(Path(rows[0].source).read_text())
        summary = prepare(PrepConfig((annotations,), videos, tmp_path / name / "store"))
        folders[name] = TrackStore.open(tmp_path / name / "store")
        assert summary.videos_done == 1
    assert "stored turned" in summary.render()
    upright, turned = (store.tracks()[0] for store in folders.values())
    faces_a = folders["upright"].load(upright)[0][:40].astype(int)
    faces_b = folders["turned"].load(turned)[0][:40].astype(int)
    assert np.abs(faces_a - faces_b).mean() < 6, "the turned clip's crops must be the upright faces"


def _packets(path: Path, kind: str) -> list[tuple[float, float]]:
    """``(start, duration)`` s of every packet of the first ``kind`` stream, in order of their timestamps."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return sorted((float(p.pts * p.time_base), float((p.duration or 0) * p.time_base))
                      for p in container.demux(stream) if p.pts is not None)


def _avi(source: Path, target: Path, audio_codec: str) -> Path:
    """``source``'s first seconds as AVI: MPEG-4 video and ``audio_codec`` (ac3 or mp3) audio at 48 kHz."""
    frames, fps = _frames(source)
    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        video = out.add_stream("mpeg4", rate=round(fps))
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        audio = out.add_stream(audio_codec if audio_codec != "mp3" else "libmp3lame", rate=48000)
        audio.layout = "stereo"
        resampler = av.AudioResampler(format=audio.codec_context.format.name, layout="stereo", rate=48000)
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            out.mux(video.encode(frame))
        for frame in inp.decode(audio=0):
            if frame.time is not None and frame.time < len(frames) / fps:
                frame.pts = None
                for converted in resampler.resample(frame):
                    converted.pts = None
                    out.mux(audio.encode(converted))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return target


def _combinations() -> list[tuple[str, str]]:
    return [(container, audio) for container, (_, audios) in ALLOWED.items() for audio in sorted(audios)] + \
        [("avi", "ac3"), ("avi", "mp3")]


@pytest.mark.parametrize("container, audio_codec", _combinations())
def test_render_keeps_audio_in_sync_for_every_container_and_audio_codec(clip, checkpoint, tmp_path, container,
                                                                         audio_codec):
    source = tmp_path / f"in.{container}"
    if container == "avi":
        _avi(clip[0], source, audio_codec)
    else:
        frames, fps = _frames(clip[0])
        video_codec = sorted(ALLOWED[container][0])[-1]
        audio = [f.to_ndarray() for f in av.open(str(clip[0])).decode(audio=0)]
        samples = np.concatenate(audio, axis=1)[:, :int(len(frames) / fps * 16000)].astype(np.float32)
        with VideoWriter(source, frames[0].shape[1], frames[0].shape[0], fps, audio_rate=16000, audio_channels=1,
                         encoding=Encoding(container, video_codec, audio_codec)) as writer:
            for image in frames:
                writer.write_frame(image)
            writer.write_audio(samples[:1])
    render_video(source, checkpoint, tmp_path / "out.mp4", settings=FAST, progress=False)
    packets = _packets(tmp_path / "out.mp4", "audio")
    starts = np.array([start for start, _ in packets])
    durations = np.array([duration for _, duration in packets])
    assert np.allclose(starts[1:], starts[:-1] + durations[:-1], atol=1e-4), "audio packets must be contiguous"
    heard = starts[-1] + durations[-1] - max(starts[0], 0.0)
    given = _packets(source, "audio")
    with av.open(str(source)) as container:  # the samples themselves, without the codec's priming and padding
        given_length = sum(frame.samples / frame.sample_rate for frame in container.decode(audio=0))
    video = _packets(tmp_path / "out.mp4", "video")
    shown = video[-1][0] + (video[-1][0] - video[0][0]) / (len(video) - 1) - video[0][0]
    assert abs(heard - given_length) < 0.07, (heard, given_length)  # within one codec frame (1024 at 16 kHz)
    assert abs(heard - shown) < 0.1, (heard, shown)
    assert abs(max(starts[0], 0.0) - max(given[0][0], 0.0)) < 0.03, "the audio keeps its start"
