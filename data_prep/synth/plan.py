"""One synthetic video, planned: faces and their motion, who speaks when, hard negatives, and its AVA rows.

Everything is a pure function of the ``VideoSpec`` (seed included), so annotations can be recomputed without
rendering and a rerun reproduces every video bit for bit.

Hard negatives, labelled NOT_SPEAKING: faces mouthing speech-like rhythms with no matching audio (often
while someone else talks), and an off-screen speaker talking while every visible face is still. Some turns
are silent (SPEAKING_NOT_AUDIBLE). So neither the sound nor the face alone tells who is speaking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from asd_se.core.ava import NOT_SPEAKING, SPEAKING_AUDIBLE, SPEAKING_NOT_AUDIBLE
from data_prep.synth.difficulty import DIFFICULTIES, VideoExtras, draw_extras
from data_prep.synth.face import FACE_WIDTH, FacePose, FaceStyle, random_style
from data_prep.synth.speech import Syllable, Voice, envelope, plan_syllables, random_voice

OFF_SCREEN = -1
SLIDE_S = 0.6


@dataclass(frozen=True)
class VideoSpec:
    """What to make: id, frame size, frame rate, length, audio format and the seed of everything else."""

    video_id: str
    width: int
    height: int
    fps: Fraction
    duration: float
    audio_rate: int
    audio_channels: int
    seed: int
    face_counts: tuple[int, ...] = (1, 2, 3)  # how many faces to draw, chosen among these
    difficulty: str = "standard"  # difficulty.py: which phenomena of real footage it has

    @property
    def frame_times(self) -> np.ndarray:
        """``(F,)`` presentation times in seconds."""
        return np.arange(int(self.duration * self.fps)) / float(self.fps)


@dataclass(frozen=True)
class Presence:
    """A stretch of time a face is on screen under one entity id (a face that leaves and returns gets two)."""

    entity_id: str
    start: float
    end: float


@dataclass(frozen=True)
class SynthFace:
    """A face: its look, its resting place (fractions of the frame) and its slow motion parameters."""

    style: FaceStyle
    base_x: float
    base_y: float
    base_height: float
    motion: tuple[float, ...]  # amplitudes, frequencies (Hz) and phases of drift, zoom and yaw
    presences: tuple[Presence, ...]
    voice: Voice


@dataclass(frozen=True)
class Utterance:
    """A stretch of mouth motion of one speaker; ``audible`` says whether its sound is in the mix."""

    speaker: int
    syllables: tuple[Syllable, ...]
    audible: bool
    mouthing: bool  # mouth moves, no voice at all: a hard negative
    laugh: bool = False  # a vocal sound that is not speech (NOT_SPEAKING), mouth moving with it

    @property
    def start(self) -> float:
        return self.syllables[0].onset

    @property
    def end(self) -> float:
        return self.syllables[-1].onset + self.syllables[-1].duration


@dataclass(frozen=True)
class ScenePlan:
    """A whole video: spec, faces, an optional off-screen voice, every utterance and the noise level."""

    spec: VideoSpec
    faces: tuple[SynthFace, ...]
    off_screen: Voice | None
    utterances: tuple[Utterance, ...]
    snr_db: float
    extras: VideoExtras = VideoExtras()


def _presences(rng: np.random.Generator, video_id: str, face_index: int, duration: float) -> tuple[Presence, ...]:
    spans = [(0.0, duration)]
    draw = rng.random()
    if draw < 0.3 and duration > 8:
        leave = rng.uniform(0.3, 0.6) * duration
        spans = [(0.0, leave), (leave + rng.uniform(1.0, 3.0), duration)]
    elif draw < 0.45 and duration > 6:
        spans = [(rng.uniform(1.0, 0.3 * duration), duration)]
    return tuple(Presence(f"{video_id}:{face_index}{chr(97 + k)}", a, b) for k, (a, b) in enumerate(spans))


def _place_faces(rng: np.random.Generator, spec: VideoSpec, count: int) -> list[SynthFace]:
    faces = []
    slot_width = 1.0 / count
    for index in range(count):
        max_h = min(0.62, slot_width * 0.8 * spec.width / spec.height / 0.84)
        height = rng.uniform(0.6, 1.0) * max_h
        motion = (rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.04), rng.uniform(0.03, 0.12),
                  rng.uniform(0.1, 0.45), rng.uniform(0.03, 0.15), rng.uniform(0.03, 0.15), rng.uniform(0.02, 0.1),
                  rng.uniform(0.05, 0.2), *rng.uniform(0, 2 * np.pi, 4))
        faces.append(SynthFace(random_style(rng), (index + 0.5) * slot_width + rng.uniform(-0.05, 0.05) * slot_width,
                               rng.uniform(0.42, 0.58), height, motion,
                               _presences(rng, spec.video_id, index, spec.duration), random_voice(rng)))
    return faces


def _on_screen(face: SynthFace, start: float, end: float) -> bool:
    return any(p.start + SLIDE_S + 0.1 <= start and end <= p.end - SLIDE_S - 0.1 for p in face.presences)


def _turns(rng: np.random.Generator, spec: VideoSpec, faces: list[SynthFace], off_screen: Voice | None
           ) -> list[Utterance]:
    """Turn-taking between faces (and the off-screen voice) with pauses and some overlap."""
    speakers = list(range(len(faces))) + ([OFF_SCREEN] if off_screen is not None else [])
    utterances: list[Utterance] = []
    t, last = rng.uniform(0.2, 1.0), None
    while t < spec.duration - 1.0:
        choices = [s for s in speakers if s != last] or speakers
        speaker = int(rng.choice(choices))
        end = min(t + rng.uniform(0.9, 3.5), spec.duration - 0.3)
        if speaker == OFF_SCREEN or _on_screen(faces[speaker], t, end):
            voice = off_screen if speaker == OFF_SCREEN else faces[speaker].voice
            syllables = plan_syllables(rng, t, end, voice.rate)
            if syllables:
                audible = speaker == OFF_SCREEN or rng.random() > 0.07
                utterances.append(Utterance(speaker, tuple(syllables), audible, mouthing=False))
                last = speaker
        t = end + (rng.uniform(-0.7, -0.1) if rng.random() < 0.2 else rng.uniform(0.2, 1.2))
    return utterances


def _gap_fillers(rng: np.random.Generator, faces: list[SynthFace], taken: list[Utterance], min_gap: float,
                 chance: float, length: tuple[float, float], rate: tuple[float, float], who=lambda index: True
                 ) -> list[tuple[int, list[Syllable]]]:
    """``(face index, syllables)`` in some gaps of each face's own utterances (faces ``who`` accepts): a gap of
    at least ``min_gap`` s is used with probability ``chance``, for ``length`` s, at ``rate`` syllables/s."""
    found = []
    for index, face in enumerate(faces):
        if not who(index):
            continue
        own = sorted((u.start, u.end) for u in taken if u.speaker == index)
        for presence in face.presences:
            edges = [presence.start + SLIDE_S] + [x for span in own for x in span] + [presence.end - SLIDE_S]
            for gap_start, gap_end in zip(edges[0::2], edges[1::2]):
                if gap_end - gap_start < min_gap or rng.random() > chance:
                    continue
                span = rng.uniform(length[0], min(length[1], gap_end - gap_start - 0.6))
                start = rng.uniform(gap_start + 0.3, gap_end - 0.3 - span)
                syllables = plan_syllables(rng, start, start + span, rng.uniform(*rate))
                if syllables:
                    found.append((index, syllables))
    return found


def _mouthing(rng: np.random.Generator, faces: list[SynthFace], speech: list[Utterance]) -> list[Utterance]:
    """Speech-like mouth motion without voice, in the gaps of each face's own speech."""
    return [Utterance(index, tuple(syllables), audible=False, mouthing=True)
            for index, syllables in _gap_fillers(rng, faces, speech, 1.8, 0.45, (0.8, 2.5), (3.0, 6.0))]


def _laughter(rng: np.random.Generator, faces: list[SynthFace], taken: list[Utterance], extras: VideoExtras
              ) -> list[Utterance]:
    """Bursts of laughter (fast, wide "ha"s with voice) in the gaps of the faces that laugh."""
    bursts = _gap_fillers(rng, faces, taken, 1.6, 0.6, (0.6, 1.8), (5.0, 7.0), lambda i: extras.face(i).laughs)
    return [Utterance(index, tuple(replace(syl, peak=min(1.0, syl.peak * 1.3), consonant=True) for syl in syllables),
                      audible=True, mouthing=False, laugh=True) for index, syllables in bursts]


def plan_scene(spec: VideoSpec) -> ScenePlan:
    """The whole plan of one video, deterministic for ``spec``."""
    difficulty = DIFFICULTIES[spec.difficulty]
    counts = difficulty.face_counts or spec.face_counts
    rng = np.random.default_rng(spec.seed)
    weights = np.array([{1: 0.3, 2: 0.4, 3: 0.3}.get(n, 0.3) for n in counts])
    faces = _place_faces(rng, spec, int(rng.choice(counts, p=weights / weights.sum())))
    extras = draw_extras(difficulty, spec.seed, len(faces), spec.duration)
    faces = [replace(face, base_height=extras.face(i).small_width_px / FACE_WIDTH / spec.height)
             if extras.face(i).small_width_px else face for i, face in enumerate(faces)]
    off_screen = random_voice(rng) if rng.random() < 0.5 else None
    off_screen = off_screen if difficulty.hard_negatives else None
    speech = _turns(rng, spec, faces, off_screen)
    mouthing = _mouthing(rng, faces, speech) if difficulty.hard_negatives else []
    laughs = _laughter(np.random.default_rng(extras.seed), faces, speech + mouthing, extras)
    utterances = sorted(speech + mouthing + laughs, key=lambda u: (u.start, u.speaker))
    return ScenePlan(spec, tuple(faces), off_screen, tuple(utterances), float(rng.uniform(*difficulty.snr_db)),
                     extras)


def face_pose(plan: ScenePlan, index: int, t: float, mouth: float) -> FacePose | None:
    """Where face ``index`` is at time ``t`` (None when off screen), with the given mouth opening."""
    face, spec = plan.faces[index], plan.spec
    presence = next((p for p in face.presences if p.start <= t < p.end), None)
    if presence is None:
        return None
    ax, ay, az, ayaw, fx, fy, fz, fyaw, px, py, pz, pyaw = face.motion
    ayaw = plan.extras.face(index).max_yaw or ayaw
    height = face.base_height * spec.height * (1 + az * np.sin(2 * np.pi * fz * t + pz))
    cx = (face.base_x + ax * np.sin(2 * np.pi * fx * t + px)) * spec.width
    cy = (face.base_y + ay * np.sin(2 * np.pi * fy * t + py)) * spec.height
    edge = -1.0 if face.base_x < 0.5 else 1.0
    travel = (cx if edge < 0 else spec.width - cx) + height
    slide_in = 1 - (t - presence.start) / SLIDE_S if presence.start > 0 else 0.0
    slide_out = 1 - (presence.end - t) / SLIDE_S if presence.end < spec.duration else 0.0
    slide = max(0.0, slide_in, slide_out)
    cx += edge * travel * slide
    return FacePose(cx, cy, height, ayaw * np.sin(2 * np.pi * fyaw * t + pyaw), mouth)


def mouth_openings(plan: ScenePlan, times: np.ndarray) -> np.ndarray:
    """``(faces, F)`` mouth opening in [0, 1] of every face at ``times``: its own utterances' envelope (scaled
    down for a subtle speaker; shifted for lips that lag or lead the voice)."""
    openings = np.zeros((len(plan.faces), len(times)))
    for utterance in plan.utterances:
        if utterance.speaker != OFF_SCREEN:
            extras = plan.extras.face(utterance.speaker)
            moving = envelope(list(utterance.syllables), times - extras.lip_offset_s) * extras.mouth_gain
            openings[utterance.speaker] = np.maximum(openings[utterance.speaker], moving)
    return openings


def label_at(plan: ScenePlan, index: int, t: float) -> str:
    """The AVA label of face ``index`` at time ``t``."""
    for utterance in plan.utterances:
        if (utterance.speaker == index and not utterance.mouthing and not utterance.laugh
                and utterance.start <= t <= utterance.end):
            return SPEAKING_AUDIBLE if utterance.audible else SPEAKING_NOT_AUDIBLE
    return NOT_SPEAKING


def _visible_fraction(box: tuple[float, float, float, float], width: int, height: int) -> float:
    x1, y1, x2, y2 = box
    inside = max(0.0, min(x2, width) - max(x1, 0)) * max(0.0, min(y2, height) - max(y1, 0))
    return inside / max((x2 - x1) * (y2 - y1), 1e-9)


def _normalised(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...]:
    x1, y1, x2, y2 = box
    return (min(max(x1 / width, 0.0), 1.0), min(max(y1 / height, 0.0), 1.0),
            min(max(x2 / width, 0.0), 1.0), min(max(y2 / height, 0.0), 1.0))


@dataclass(frozen=True)
class SynthRow:
    """One annotation row plus its mouth box (both normalised to [0, 1])."""

    video_id: str
    timestamp: str
    box: tuple[float, ...]
    label: str
    entity_id: str
    mouth_box: tuple[float, ...]


def annotation_rows(plan: ScenePlan) -> list[SynthRow]:
    """Every face that is at least half visible, at every frame time, as an AVA row with its mouth box."""
    spec = plan.spec
    times = spec.frame_times
    openings = mouth_openings(plan, times)
    rows = []
    for frame, t in enumerate(times):
        for index, face in enumerate(plan.faces):
            pose = face_pose(plan, index, float(t), float(openings[index, frame]))
            if pose is None or _visible_fraction(pose.box, spec.width, spec.height) < 0.5:
                continue
            presence = next(p for p in face.presences if p.start <= t < p.end)
            rows.append(SynthRow(spec.video_id, f"{t:.3f}", _normalised(pose.box, spec.width, spec.height),
                                 label_at(plan, index, float(t)), presence.entity_id,
                                 _normalised(pose.mouth_box(face.style.aspect), spec.width, spec.height)))
    return rows
