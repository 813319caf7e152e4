"""Where a clip's own voice speaks: silero-vad (MIT; its model inside the wheel, no download), per video frame."""

from __future__ import annotations

import numpy as np

from asd_se.core.media import AUDIO_RATE

MIN_SPEECH_S = 0.25  # shorter bursts are clicks and breaths, not speech
MIN_SILENCE_S = 0.1  # a pause shorter than this does not end an utterance (silero's own default)


def speech_segments(audio: np.ndarray) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of each utterance in a 16 kHz mono float32 waveform ``(N,)``."""
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    torch.set_num_threads(1)
    if len(audio) < AUDIO_RATE // 10:
        return []
    found = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(audio, np.float32)), load_silero_vad(),
                                  sampling_rate=AUDIO_RATE, min_speech_duration_ms=int(MIN_SPEECH_S * 1000),
                                  min_silence_duration_ms=int(MIN_SILENCE_S * 1000))
    return [(s["start"] / AUDIO_RATE, s["end"] / AUDIO_RATE) for s in found]


def speaking_frames(segments: list[tuple[float, float]], times: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: the frames at ``times`` (s) that lie inside an utterance."""
    flags = np.zeros(len(times), bool)
    for start, end in segments:
        flags |= (times >= start) & (times < end)
    return flags
