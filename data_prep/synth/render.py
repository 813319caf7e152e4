"""Turn a ScenePlan into pixels and samples: background, lighting, faces, camera noise, the audio mix."""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from data_prep.synth.face import draw_face, draw_occluder
from data_prep.synth.plan import OFF_SCREEN, ScenePlan, face_pose, mouth_openings
from data_prep.synth.speech import render_laughter, render_music, render_speech


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A textured, unevenly lit backdrop ``(H, W, 3)`` uint8 with a few blurred shapes."""
    coarse = rng.uniform(50, 200, (height // 24 + 2, width // 24 + 2, 3))
    grey = coarse.mean(axis=2, keepdims=True)
    coarse = grey + (coarse - grey) * rng.uniform(0.1, 0.35)
    image = cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(rng.integers(2, 7))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(width // 10, width // 2)), int(rng.integers(height // 10, height // 2))
        cv2.rectangle(image, (x, y), (x + w, y + h), tuple(float(c) for c in rng.uniform(30, 220, 3)), -1)
    image = cv2.GaussianBlur(image, (0, 0), max(1.0, width / 200))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    image *= (0.8 + rng.uniform(0.1, 0.4) * (ramp - ramp.min()))[..., None]
    image += rng.normal(0, 5, (height, width, 1)).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _far_away(image: np.ndarray, box: tuple[float, float, float, float], sigma: float, contrast: float) -> None:
    """Soften a far face in place: out of focus (Gaussian, ``sigma`` px) and hazy (``contrast`` of its contrast
    left, around its mean colour) inside a feathered ellipse over ``box`` and its hair, so no edge is drawn."""
    x1, y1, x2, y2 = box
    pad = 0.45 * (y2 - y1)
    left, top = max(0, int(x1 - pad)), max(0, int(y1 - pad))
    right, bottom = min(image.shape[1], int(np.ceil(x2 + pad))), min(image.shape[0], int(np.ceil(y2 + pad)))
    if right - left < 2 or bottom - top < 2:
        return
    region = image[top:bottom, left:right].astype(np.float32)
    soft = cv2.GaussianBlur(region, (0, 0), sigma)
    mean = soft.reshape(-1, 3).mean(axis=0)
    soft = mean + (soft - mean) * contrast
    mask = np.zeros(region.shape[:2], np.float32)
    centre = ((x1 + x2) / 2 - left, (y1 + y2) / 2 - top)
    axes = ((x2 - x1) / 2 + pad * 0.6, (y2 - y1) / 2 + pad * 0.6)
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), (int(axes[0]), int(axes[1])), 0, 0, 360, 1.0,
                -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, pad / 3))[..., None]
    image[top:bottom, left:right] = np.clip(region * (1 - mask) + soft * mask, 0, 255).astype(np.uint8)


def render_frames(plan: ScenePlan) -> Iterator[np.ndarray]:
    """Yield every frame of the video as ``(H, W, 3)`` uint8 BGR."""
    spec = plan.spec
    rng = np.random.default_rng(spec.seed + 1)
    backdrop = _background(rng, spec.width, spec.height)
    noise_level = rng.uniform(1.0, 4.0)
    grain = [rng.normal(0, noise_level, (spec.height, spec.width, 3)).astype(np.int16) for _ in range(5)]
    light_amp, light_freq, light_phase = rng.uniform(0.03, 0.12), rng.uniform(0.05, 0.3), rng.uniform(0, 6.3)
    times = spec.frame_times
    openings = mouth_openings(plan, times)
    extras = plan.extras
    for frame, t in enumerate(times):
        image = backdrop.copy()
        poses = [(face_pose(plan, i, float(t), float(openings[i, frame])), i) for i in range(len(plan.faces))]
        for pose, index in sorted((p for p in poses if p[0] is not None), key=lambda p: p[0].height):
            style, face_extras = plan.faces[index].style, extras.face(index)
            draw_face(image, pose, style)
            if any(a <= t < b for a, b in face_extras.occlusions):
                draw_occluder(image, pose.mouth_box(style.aspect), face_extras.occluder, face_extras.cover,
                              style.skin)
            if face_extras.far_blur_px > 0:
                _far_away(image, pose.box, face_extras.far_blur_px, face_extras.far_contrast)
        for start, end, length in extras.blur:  # the camera moves: motion blur along a line
            if start <= t < end:
                kernel = np.zeros((length, length), np.float32)
                kernel[length // 2] = 1.0 / length
                image = cv2.filter2D(image, -1, kernel)
        gain = (1.0 + light_amp * np.sin(2 * np.pi * light_freq * t + light_phase)) * extras.light_gain
        lit = image.astype(np.int16) * np.int16(round(gain * 64)) // 64 + grain[frame % len(grain)]
        yield np.clip(lit, 0, 255).astype(np.uint8)


def render_audio(plan: ScenePlan) -> np.ndarray:
    """The soundtrack ``(channels, N)`` float32: every audible utterance plus coloured background noise."""
    spec = plan.spec
    rng = np.random.default_rng(spec.seed + 2)
    count = int(round(spec.duration * spec.audio_rate))
    mix = np.zeros(count)
    gains = {i: rng.uniform(0.7, 1.3) for i in [OFF_SCREEN, *range(len(plan.faces))]}
    for utterance in plan.utterances:
        if utterance.audible:
            voice = plan.off_screen if utterance.speaker == OFF_SCREEN else plan.faces[utterance.speaker].voice
            render = render_laughter if utterance.laugh else render_speech
            mix += gains[utterance.speaker] * render(rng, voice, list(utterance.syllables), spec.audio_rate, count)
    spectrum = np.fft.rfft(rng.normal(0, 1, count))
    freqs = np.fft.rfftfreq(count, 1 / spec.audio_rate)
    spectrum /= np.maximum(freqs, 20.0) ** rng.uniform(0.3, 1.0)  # between white and pink
    noise = np.fft.irfft(spectrum, count)
    speech_rms = np.sqrt(np.mean(mix[mix != 0] ** 2)) if np.any(mix) else 0.05
    mix += noise / np.std(noise) * speech_rms * 10 ** (-plan.snr_db / 20)
    if plan.extras.music_db is not None:
        music = render_music(np.random.default_rng(plan.extras.seed), spec.audio_rate, count)
        mix += music / max(np.std(music), 1e-9) * speech_rms * 10 ** (plan.extras.music_db / 20)
    mix *= 0.5 / max(np.abs(mix).max(), 1e-9)
    # further channels: the mix a little quieter each, with their own hiss (5.1: dialogue in every speaker)
    channels = [mix] + [(1.0 - 0.1 * k) * mix + rng.normal(0, 1e-3, count) for k in range(1, spec.audio_channels)]
    return np.stack(channels).astype(np.float32)
