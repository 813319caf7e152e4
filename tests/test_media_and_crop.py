"""Media writing/reading and the one crop function."""

from __future__ import annotations

import re

import numpy as np
import pytest

from asd_se.core.crop import PAD_VALUE, face_crop
from asd_se.core.errors import MediaError
from asd_se.core.media import decode, probe, read_audio
from asd_se.core.writer import VideoWriter


def test_odd_sized_mp4_round_trips_with_audio(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, 33, 27, 30, audio_rate=44100, audio_channels=2) as writer:
        for i in range(30):
            writer.write_frame(np.full((27, 33, 3), i * 8, np.uint8))
        writer.write_audio(np.zeros((2, 44100), np.float32) + 0.1)
    info = probe(path)
    assert (info.width, info.height, round(info.fps)) == (33, 27, 30) and info.has_audio
    frames = list(decode(path, ("gray", "bgr24")))
    assert len(frames) == 30 and frames[0][1][0].shape == (27, 33) and frames[0][1][1].shape == (27, 33, 3)
    assert abs(frames[1][0] - 1 / 30) < 1e-6
    assert abs(len(read_audio(path)) - 16000) < 1200  # 1 s at 16 kHz, give or take AAC priming


def test_writer_leaves_nothing_when_interrupted(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, 32, 32, 25) as writer:
            writer.write_frame(np.zeros((32, 32, 3), np.uint8))
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_colours_survive_the_writer_on_both_pixel_paths(tmp_path):
    """Even sizes are converted to 4:2:0 by OpenCV, odd ones by the encoder: both keep the colours (BGR order)."""
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (40, 200, 230), (128, 128, 128)]  # BGR
    for width, height in ((64, 48), (65, 49)):
        path = tmp_path / f"colours_{width}.mp4"
        with VideoWriter(path, width, height, 25) as writer:
            for colour in colours:
                writer.write_frame(np.full((height, width, 3), colour, np.uint8))
        decoded = [images[0] for _, images in decode(path, ("bgr24",))]
        assert len(decoded) == len(colours)
        for image, colour in zip(decoded, colours):
            assert np.abs(image.reshape(-1, 3).mean(axis=0) - colour).max() < 6, (width, colour)


def test_an_error_on_the_encoder_thread_reaches_the_caller_and_leaves_no_file(tmp_path, monkeypatch):
    import errno
    import threading

    from asd_se.core.fsio import OutputError

    path, where = tmp_path / "out.mp4", []
    with pytest.raises(OutputError, match="cannot be written \\(No space left on device\\)"):
        with VideoWriter(path, 32, 32, 25) as writer:
            def full(*args):
                where.append(threading.current_thread())
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(writer, "_container", _FailingMux(writer._container, full))
            for _ in range(50):  # raised at a later write or at the close, whichever comes first
                writer.write_frame(np.zeros((32, 32, 3), np.uint8))
    assert where and where[0] is not threading.main_thread()
    assert list(tmp_path.iterdir()) == []


class _FailingMux:
    """A container whose ``mux`` calls ``failure``; everything else is the real container's."""

    def __init__(self, container, failure):
        self._container, self.mux = container, failure

    def __getattr__(self, name):
        return getattr(self._container, name)


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"", "empty (0 bytes)"),
                                              (b"hello, not a video", "not a readable media file")])
def test_unusable_files_raise_media_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(MediaError, match=re.escape(message)) as caught:
        probe(path)
    assert str(path) in str(caught.value)


def test_crop_is_square_centred_and_padded_at_the_border():
    gray = np.zeros((100, 200), np.uint8)
    gray[40:60, 90:110] = 255  # a bright 20 px square face
    crop, region = face_crop(gray, (90, 40, 110, 60), size=28, margin=0.4)
    assert crop.shape == (28, 28) and region.side == 28
    assert crop[14, 14] == 255 and crop[0, 0] == 0
    edge, region = face_crop(gray, (-10, 40, 10, 60), size=28, margin=0.4)
    assert edge[14, 0] == PAD_VALUE and region.x0 < 0
    x, y = region.to_frame(np.array([14.0]), np.array([14.0]), 28)
    assert abs(x[0] - 0) <= 1 and abs(y[0] - 50) <= 1
