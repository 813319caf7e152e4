"""Speech-like audio: voiced syllables with pitch and formant structure at a 3-6 Hz rhythm, with pauses.

A syllable list is the single source of truth: the same list gives the waveform AND the amplitude envelope
that drives the speaker's mouth, so mouth and sound are in sync exactly when they should be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

# (F1, F2, F3) in Hz for a few vowels of an adult male voice; a voice scales them by its tract factor.
VOWEL_FORMANTS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                           [570, 840, 2410], [300, 870, 2240], [660, 1720, 2410]], dtype=np.float64)


@dataclass(frozen=True)
class Voice:
    """A speaker: mean pitch (Hz), formant scale, syllables per second."""

    f0: float
    tract: float
    rate: float


@dataclass(frozen=True)
class Syllable:
    """One syllable: onset (s), duration (s), peak amplitude, vowel index, consonant onset or not."""

    onset: float
    duration: float
    peak: float
    vowel: int
    consonant: bool


def random_voice(rng: np.random.Generator) -> Voice:
    """A random adult or child-like voice."""
    f0 = float(rng.choice([rng.uniform(90, 140), rng.uniform(160, 250)]))
    return Voice(f0=f0, tract=float(rng.uniform(0.9, 1.25) * (1.1 if f0 > 150 else 1.0)),
                 rate=float(rng.uniform(3.0, 6.0)))


def plan_syllables(rng: np.random.Generator, start: float, end: float, rate: float) -> list[Syllable]:
    """Syllables filling ``[start, end]`` at about ``rate`` per second, with short word pauses between."""
    syllables = []
    t = start
    while True:
        duration = rng.uniform(0.55, 0.95) / rate
        if t + duration > end:
            break
        syllables.append(Syllable(t, duration, float(rng.uniform(0.55, 1.0)), int(rng.integers(len(VOWEL_FORMANTS))),
                                  bool(rng.random() < 0.5)))
        t += duration + rng.uniform(0.02, 0.08)
        if rng.random() < 0.18:
            t += rng.uniform(0.12, 0.35)
    return syllables


def envelope(syllables: list[Syllable], times: np.ndarray) -> np.ndarray:
    """Amplitude envelope in [0, 1] at ``times`` (s): a raised sine over each syllable, 0 between."""
    env = np.zeros(len(times), np.float64)
    for syl in syllables:
        phase = (times - syl.onset) / syl.duration
        inside = (phase >= 0) & (phase <= 1)
        env[inside] = np.maximum(env[inside], syl.peak * np.sin(np.pi * phase[inside]) ** 0.7)
    return env


def _resonator(freq: float, bandwidth: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    radius = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * freq / rate
    return np.array([1.0 - radius]), np.array([1.0, -2 * radius * np.cos(theta), radius ** 2])


def _through_formants(source: np.ndarray, formants: np.ndarray, gains: tuple[float, ...], base_bandwidth: float,
                      relative_bandwidth: float, rate: int) -> np.ndarray:
    """``source (n,)`` through one resonator per formant (Hz) below 0.9 × Nyquist, summed with ``gains``; each
    resonator ``base_bandwidth + relative_bandwidth · formant`` Hz wide."""
    voiced = np.zeros(len(source))
    for gain, formant in zip(gains, formants):
        if formant < rate / 2 * 0.9:
            b, a = _resonator(formant, base_bandwidth + relative_bandwidth * formant, rate)
            voiced += gain * lfilter(b, a, source)
    return voiced


def _syllable_spans(syllables: list[Syllable], rate: int, n_samples: int):
    """Per syllable that fits: ``(syllable, first sample, sample count, its sample times (count,) in s)``."""
    for syl in syllables:
        first = int(syl.onset * rate)
        count = min(int(syl.duration * rate), n_samples - first)
        if count > 8:
            yield syl, first, count, np.arange(count) / rate


def render_speech(rng: np.random.Generator, voice: Voice, syllables: list[Syllable], rate: int,
                  n_samples: int) -> np.ndarray:
    """The waveform ``(n_samples,)`` float64 of ``syllables`` spoken by ``voice`` at sample rate ``rate``."""
    out = np.zeros(n_samples, np.float64)
    for syl, first, count, local in _syllable_spans(syllables, rate, n_samples):
        pitch = voice.f0 * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * local + rng.uniform(0, 6.3)))
        pitch *= 1 - 0.1 * local / max(syl.duration, 1e-3)
        phase = np.cumsum(pitch / rate)
        source = 2 * (phase % 1.0) - 1  # sawtooth: a glottal pulse train with all harmonics
        voiced = _through_formants(source, VOWEL_FORMANTS[syl.vowel] * voice.tract, (1.0, 0.6, 0.3), 60, 0.06, rate)
        shape = np.sin(np.pi * np.arange(count) / count) ** 0.7 * syl.peak
        segment = voiced * shape
        if syl.consonant:
            burst = min(count, int(rng.uniform(0.02, 0.05) * rate))
            noise = np.diff(rng.normal(0, 1, burst + 1))
            segment[:burst] += 0.25 * noise * np.linspace(1, 0, burst) * np.std(voiced)
        out[first:first + count] += segment
    peak_rms = np.sqrt(np.mean(out[out != 0] ** 2)) if np.any(out) else 1.0
    return out / max(peak_rms, 1e-9) * 0.1


def render_laughter(rng: np.random.Generator, voice: Voice, syllables: list[Syllable], rate: int,
                    n_samples: int) -> np.ndarray:
    """Laughter ``(n_samples,)``: each syllable a breathy "ha" (aspiration noise and a high, falling voice
    through the formants of an open vowel) with a sharp attack — vocal, but not speech."""
    out = np.zeros(n_samples, np.float64)
    formants = VOWEL_FORMANTS[0] * voice.tract
    for syl, first, count, local in _syllable_spans(syllables, rate, n_samples):
        pitch = voice.f0 * 1.5 * (1 - 0.25 * local / max(syl.duration, 1e-3))
        source = 0.5 * (2 * (np.cumsum(pitch / rate) % 1.0) - 1) + rng.normal(0, 0.6, count)
        voiced = _through_formants(source, formants, (1.0, 0.5, 0.25), 120, 0.1, rate)
        out[first:first + count] += voiced * np.exp(-local / (0.4 * syl.duration)) * syl.peak
    rms = np.sqrt(np.mean(out[out != 0] ** 2)) if np.any(out) else 1.0
    return out / max(rms, 1e-9) * 0.1


def render_music(rng: np.random.Generator, rate: int, n_samples: int) -> np.ndarray:
    """A music bed ``(n_samples,)``: chords of harmonic tones from a pentatonic scale changing every 0.25-0.6 s
    over a steady low beat (unit-free; the caller sets its level)."""
    out = np.zeros(n_samples, np.float64)
    scale = 110.0 * 2 ** (np.array([0, 2, 4, 7, 9, 12, 14, 16, 19, 21]) / 12)
    beat = rng.uniform(0.4, 0.7)
    t = 0.0
    while t * rate < n_samples:
        length = rng.uniform(0.25, 0.6)
        first, count = int(t * rate), min(int(length * rate), n_samples - int(t * rate))
        local = np.arange(count) / rate
        shape = np.minimum(1.0, local / 0.02) * np.exp(-local / (0.6 * length))
        for root in rng.choice(scale, 3, replace=False):
            out[first:first + count] += shape * sum(np.sin(2 * np.pi * root * k * local) / k for k in (1, 2, 3))
        t += length
    kick = np.arange(int(0.12 * rate)) / rate
    thump = np.sin(2 * np.pi * 55 * kick) * np.exp(-kick / 0.04) * 3
    for start in np.arange(0, n_samples / rate, beat):
        first = int(start * rate)
        out[first:first + len(thump)] += thump[: n_samples - first]
    return out
