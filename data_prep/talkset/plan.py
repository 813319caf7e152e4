"""Which videos the dataset holds, and every face's label in each: TalkSet's recipe on identity-disjoint splits.

Per source clip (each split's clips, voices drawn from the same split only):
- ``own``: the clip as recorded. ``SPEAKING_AUDIBLE`` where its own voice speaks (silero-vad), else ``NOT_SPEAKING``.
- ``other-voice``: the clip's face with the audio of a clip of another identity (looped or cut to length). Every
  frame ``NOT_SPEAKING``: the voice heard is never this face's.
- ``shifted``: the clip's face with its own audio delayed circularly by ``s`` in [1, 2.5] s (at most the clip's
  length less 1 s; clips under 2 s get none). Every frame ``NOT_SPEAKING``: at frame time t the voice heard was
  spoken at t - s (mod the length), a second or more away from the lips seen, so sound and face never correspond.
- ``composite``: 2 or 3 clips of different identities side by side (each scaled to the shortest clip's height,
  cut to the shortest length), one clip's own voice kept. Its face is labelled as in ``own``; the others are
  ``NOT_SPEAKING`` on every frame (their lips move to a voice that is not theirs).

Each face track also gets a kind (the categories file): ``own``, ``other-voice``, ``shifted``, ``composite-voice``
(the face whose voice is kept), ``composite-other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from asd_se.core.ava import NOT_SPEAKING, SPEAKING_AUDIBLE
from asd_se.core.errors import InputError
from data_prep.talkset.clips import ClipFacts

KINDS = ("own", "other-voice", "shifted", "composite-voice", "composite-other")
SHIFT_S = (1.0, 2.5)
MIN_SHIFTED_S = 2.0  # a clip must leave a shift of >= 1 s at least 1 s away around the circle
COMPOSITE_FACES = (2, 3)
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Sample:
    """One output video: ``faces`` (indices into the clip list, left to right), whose ``voice`` is heard (a
    clip index), delayed by ``shift`` s, ``frames`` long (at the first face's frame rate)."""

    video_id: str
    split: str
    kind: str  # own | other-voice | shifted | composite
    faces: tuple[int, ...]
    voice: int
    shift: float
    frames: int

    def face_kind(self, slot: int) -> str:
        if self.kind != "composite":
            return self.kind
        return "composite-voice" if self.faces[slot] == self.voice else "composite-other"


def labels(sample: Sample, slot: int, clips: Mapping[int, ClipFacts]) -> list[str]:
    """``(frames,)`` AVA labels of the face in ``slot``: its own voice's activity where that voice is heard
    in sync, ``NOT_SPEAKING`` everywhere else."""
    face = sample.faces[slot]
    if sample.voice != face or sample.shift:
        return [NOT_SPEAKING] * sample.frames
    return [SPEAKING_AUDIBLE if s else NOT_SPEAKING for s in clips[face].speaking[:sample.frames]]


def split_identities(identities: list[str], val_fraction: float, seed: int) -> dict[str, str]:
    """identity -> split, whole identities, deterministic from ``seed``. Each split that has identities needs two
    (another person's voice must exist inside it); InputError otherwise."""
    names = sorted(identities)
    if len(names) < 2:
        raise InputError(f"{len(names)} identity folder(s) with usable clips ({', '.join(names) or 'none'}): "
                         f"another person's voice needs at least 2")
    val_count = 0 if val_fraction == 0 else max(2, int(round(val_fraction * len(names))))
    if val_count and len(names) - val_count < 2:
        raise InputError(f"{len(names)} identities cannot make identity-disjoint splits with 2 or more in each "
                         f"(give at least 4, or --val-fraction 0 for a train split only)")
    order = np.random.default_rng(seed).permutation(len(names))
    val = {names[i] for i in order[:val_count]}
    return {name: "val" if name in val else "train" for name in names}


def _composites(members: list[int], clips: list[ClipFacts], count: int, split: str,
                rng: np.random.Generator) -> list[Sample]:
    """``count`` composites of clips of different identities (and the same frame rate: frames pair by index)."""
    samples = []
    for number in range(count):
        first = int(rng.choice(members))
        faces = [first]
        for _ in range(int(rng.choice(COMPOSITE_FACES)) - 1):
            taken = {clips[f].clip.identity for f in faces}
            candidates = [i for i in members if clips[i].clip.identity not in taken
                          and clips[i].fps == clips[first].fps]
            if candidates:
                faces.append(int(rng.choice(candidates)))
        if len(faces) < 2:
            continue
        voice = faces[int(rng.integers(len(faces)))]
        name = "+".join(clips[f].clip.clip_id for f in faces)
        samples.append(Sample(f"mix{number:04d}_{name}", split, "composite", tuple(faces), voice, 0.0,
                              min(clips[f].frames for f in faces)))
    return samples


def plan_samples(clips: list[ClipFacts], val_fraction: float = 0.2, composites: float = 0.5, seed: int = 0
                 ) -> tuple[list[Sample], dict[str, str]]:
    """Every output video, and the split of each identity. ``composites``: composite videos per clip."""
    splits = split_identities(sorted({c.clip.identity for c in clips}), val_fraction, seed)
    rng = np.random.default_rng(seed + 1)
    samples = []
    for split in SPLITS:
        members = [i for i, c in enumerate(clips) if splits[c.clip.identity] == split]
        for index in members:
            clip = clips[index]
            others = [i for i in members if clips[i].clip.identity != clip.clip.identity]
            samples.append(Sample(f"own_{clip.clip.clip_id}", split, "own", (index,), index, 0.0, clip.frames))
            voice = int(rng.choice(others))
            samples.append(Sample(f"voice_{clip.clip.clip_id}_{clips[voice].clip.clip_id}", split, "other-voice",
                                  (index,), voice, 0.0, clip.frames))
            if clip.seconds >= MIN_SHIFTED_S:
                shift = round(float(rng.uniform(SHIFT_S[0], min(SHIFT_S[1], clip.seconds - 1.0))), 2)
                samples.append(Sample(f"shift{int(shift * 1000)}ms_{clip.clip.clip_id}", split, "shifted", (index,),
                                      index, shift, clip.frames))
        if members:
            samples += _composites(members, clips, int(round(composites * len(members))), split, rng)
    return samples, splits
