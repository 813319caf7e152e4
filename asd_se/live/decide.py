"""Live decisions through THE scoring engine: for each face, once ``lookahead`` samples after a stretch have
arrived, the window of ``context`` samples before it, the stretch and the lookahead is scored by ``score_clip``
(one forward pass, the explainer's maps from it: the stretch's only) and the stretch's probabilities, maps and
SE channels kept.

The visual encoder's maps of a frame are final — identical to one pass over the whole track — once the frames
its temporal convolutions reach (``temporal_radius``) have arrived, and they are cached. A chain encoder
(LR-ASD's) is streamed (``models/streaming.py``): each frame is encoded once, all faces in one batch, and a
window ends at the last final map, so the encoder's reach counts against the lookahead; only a lookahead shorter
than that reach (or ``open_maps``) reads the newest maps as a clip ending now has them. Other encoders re-encode
the newest frames with that reach around them each step; a model without separate stages (onnxruntime's) encodes
each window whole.
The audio embedding of a staged model is kept the same way (``live/sound.py``): each sample's encoded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from asd_se.core.crop import CROP_SIZE
from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.core.timing import StageTimer
from asd_se.explain import Explainer
from asd_se.live.buffers import AudioRing, Ring
from asd_se.live.faces import LiveTrack
from asd_se.live.sound import SoundStream
from asd_se.models import AsdModel
from asd_se.models.streaming import EncoderStream, chain_layers
from asd_se.scoring.engine import ClipScores, score_clips
from asd_se.video.explainers import map_peaks


@dataclass
class SampleResult:
    """One decided sample of a face: probability, the model's score, its map ``(h, w)`` in [0, 1] (None where
    all zero or no explainer), the map's peak ``(2,)`` (fractions of the crop; NaN without a map) and the SE
    channels selected."""

    prob: float
    score: float
    heat: np.ndarray | None
    peak: np.ndarray
    channels: list[int]


@dataclass(eq=False)
class _Window:
    """One decision's model inputs: samples ``[lo, hi)`` of ``track`` to decide up to ``limit`` — the explained
    layer ``(1, C, T, h, w)`` (None: the model encodes the faces itself), or with ``pooled`` ``(1, C, T, 2)`` (what
    the decision reads of it) the maps of the ``kept`` samples only ``(1, C, K, h, w)``; faces ``(1, T, S, S)``,
    audio with the front end's context ``(1, N)`` and, for a staged model, its embedding ``(1, T, D)``."""

    track: LiveTrack
    limit: int
    lo: int
    hi: int
    visual: torch.Tensor | None
    pooled: torch.Tensor | None
    faces: torch.Tensor
    audio: torch.Tensor
    sound: torch.Tensor | None

    @property
    def kept(self) -> slice:
        """The samples it decides, inside the window."""
        return slice(self.track.decided - self.lo, self.limit - self.lo)


@dataclass(eq=False)
class _Encoded:
    """A track's visual maps so far: per sample the final ones ``(C, h, w)`` and their pooling ``(C, 2)``
    (``model.pool``), its encoder stream (chain encoders) and how many of its samples went in."""

    maps: Ring
    stream: EncoderStream | None
    fed: int
    ended: bool = False


class LiveDecider:
    """Decide live tracks' samples (see the module); ``lookahead``, ``context`` and ``hop`` in samples (a stretch
    is decided once ``hop`` samples are ready: fewer forward passes, ``hop`` more latency)."""

    def __init__(self, model: AsdModel, device: torch.device, explainer: Explainer, audio: AudioRing,
                 lookahead: int, context: int, hop: int = 1, timer: StageTimer | None = None,
                 open_maps: bool = False):
        self.model, self.device, self.explainer, self.audio = model, device, explainer, audio
        self.lookahead, self.context, self.hop, self.open_maps = lookahead, context, max(1, hop), open_maps
        self.timer = timer or StageTimer()
        staged = hasattr(model, "decide")
        visual = getattr(model, "visual", None) if staged else None
        self.radius: int | None = getattr(visual, "temporal_radius", None)
        self.layers = chain_layers(visual) if visual is not None else None
        self._encoded: dict[LiveTrack, _Encoded] = {}
        self.sound = self._sound_stream()

    def ready(self, track: LiveTrack, newest: int, final: bool) -> int:
        """One past the last sample of ``track`` that can be decided now (``newest``: one past the last sample
        whose picture and sound have both arrived)."""
        if not track.open or final:
            return track.end
        limit = min(track.end, newest - self.lookahead)
        return limit if limit - track.decided >= self.hop else track.decided

    def step(self, tracks: list[LiveTrack], newest: int, final: bool = False) -> int:
        """Decide what can be decided of every track; returns how many samples were. Windows of one length go
        through the model as one batch (each decided as if alone)."""
        due = [(track, self.ready(track, newest, final)) for track in tracks]
        due = [(track, limit) for track, limit in due if limit > track.decided]
        if self.sound is not None:
            with self.timer.stage("model", self.device):
                self.sound.advance(newest)
        tails = {}
        if self.layers is not None:
            self._feed(tracks)  # every new crop as it comes, not only those of the faces due now (a burst)
            tails = self._open_tails(due, final)
        count = sum(limit - track.decided for track, limit in due)
        groups: dict[tuple, list[_Window]] = {}
        for track, limit in due:
            window = self._window(track, limit, final or not track.open, tails.get(track))
            kept = (window.kept.start, window.kept.stop) if window.pooled is not None else None  # one span a batch
            key = (window.hi - window.lo, kept) if window.visual is not None else (-len(groups) - 1,)  # whole: alone
            groups.setdefault(key, []).append(window)
        for group in groups.values():
            visual = torch.cat([w.visual for w in group]) if group[0].visual is not None else None
            pooled = torch.cat([w.pooled for w in group]) if group[0].pooled is not None else None
            sound = torch.cat([w.sound for w in group]) if group[0].sound is not None else None
            results = score_clips(self.model, torch.cat([w.faces for w in group]),
                                  torch.cat([w.audio for w in group]), [self.explainer], self.timer, visual=visual,
                                  explained=group[0].kept if pooled is not None else [w.kept for w in group],
                                  pooled=pooled, sound=sound)
            for window, scores in zip(group, results):
                self._keep(window, scores)
        return count

    def _encoded_of(self, track: LiveTrack) -> _Encoded:
        if track not in self._encoded:
            stream = EncoderStream(self.layers) if self.layers is not None else None
            self._encoded[track] = _Encoded(Ring(track.first), stream, track.first)
        return self._encoded[track]

    def _feed(self, tracks: list[LiveTrack]) -> None:
        """Push every track's new crops through its encoder stream; faces with as many new crops go as one batch."""
        groups: dict[int, list[LiveTrack]] = {}
        for track in tracks:
            groups.setdefault(track.end - self._encoded_of(track).fed, []).append(track)
        for count, group in groups.items():
            if count <= 0:
                continue
            encoded = [self._encoded[track] for track in group]
            crops = np.stack([np.stack(track.crops.slice(e.fed, track.end)) for track, e in zip(group, encoded)])
            with self.timer.stage("visual", self.device), torch.no_grad():
                faces = self.model.normalise(torch.from_numpy(crops).to(self.device)).unsqueeze(1)
                maps = EncoderStream.push_together([e.stream for e in encoded], faces)
            for e, track, final in zip(encoded, group, maps):
                e.fed = track.end
                if final is not None:
                    e.maps.extend(self._entries(final))

    def _entries(self, maps: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Maps ``(1, C, m, h, w)`` -> per sample ``(maps (C, h, w), pooled (C, 2))``."""
        with torch.no_grad():
            return list(zip(maps[0].transpose(0, 1), self.model.pool(maps)[0].transpose(0, 1)))

    def _open_tails(self, due: list[tuple[LiveTrack, int]], final: bool) -> dict[LiveTrack, torch.Tensor | None]:
        """Per open track whose window reads maps not final yet (a lookahead shorter than the encoder's reach, or
        ``open_maps``):
        those maps as a clip ending now has them ``(1, C, m, h, w)``; tracks at the same point as one batch."""
        wanting = [track for track, limit in due
                   if track.open and not final and self._encoded[track].maps.end < self._map_end(track, limit)]
        if not wanting:
            return {}
        with self.timer.stage("visual", self.device), torch.no_grad():
            tails = EncoderStream.tail_together([self._encoded[track].stream for track in wanting])
        return dict(zip(wanting, tails))

    def _map_end(self, track: LiveTrack, limit: int) -> int:
        """Where a streamed window's maps must reach before it may end at its last final map: its last decided
        sample, or with ``open_maps`` its whole lookahead (the newest maps then read open, as a clip ending now)."""
        return min(track.end, limit + self.lookahead) if self.open_maps else limit

    def _window_maps(self, track: LiveTrack, lo: int, hi: int, limit: int, complete: bool,
                     tail: torch.Tensor | None) -> tuple[list | None, int]:
        """The window's samples from ``lo`` as ``_entries`` (None: the model encodes it whole) and where the window
        ends (``hi``, or earlier for a streamed encoder: at its last final map); ``tail``: the track's open maps
        (``_open_tails``) where its window reads them."""
        if self.radius is None:
            return None, hi
        if self.layers is None:
            return self._halo_maps(track, lo, hi, complete), hi
        encoded = self._encoded_of(track)
        with self.timer.stage("visual", self.device), torch.no_grad():
            if complete and not encoded.ended:
                rest = encoded.stream.tail()
                if rest is not None:
                    encoded.maps.extend(self._entries(rest))
                encoded.ended = True
            fresh: list = []
            if encoded.maps.end >= self._map_end(track, limit):
                hi = min(hi, encoded.maps.end)
            elif tail is not None:  # a lookahead shorter than the encoder's reach: the newest maps, open
                fresh = self._entries(tail)[:hi - encoded.maps.end]
        return encoded.maps.slice(lo, hi) + fresh, hi

    def _halo_maps(self, track: LiveTrack, lo: int, hi: int, complete: bool) -> list:
        """Maps of ``[lo, hi)`` for an encoder that cannot be streamed: the newest frames encoded again with the
        frames its reach needs, those now final cached."""
        cache = self._encoded_of(track).maps
        final_to = track.end if complete else max(cache.end, track.end - self.radius)
        fresh: list = []
        if hi > cache.end:
            start = max(track.crops.start, cache.end - self.radius)
            crops = torch.from_numpy(np.stack(track.crops.slice(start, track.end)))[None].to(self.device)
            with self.timer.stage("visual", self.device), torch.no_grad():
                encoded = self._entries(self.model.visual_maps(crops))
            cache.extend(encoded[cache.end - start:final_to - start])
            fresh = encoded[final_to - start:hi - start]
        return cache.slice(lo, min(hi, cache.end)) + fresh

    def _window(self, track: LiveTrack, limit: int, complete: bool, tail: torch.Tensor | None) -> _Window:
        """The model's inputs to decide ``track`` up to ``limit``: ``context`` samples before, the lookahead after."""
        lo = max(track.crops.start, track.decided - self.context)
        hi = track.end if complete else min(track.end, limit + self.lookahead)
        entries, hi = self._window_maps(track, lo, hi, limit, complete, tail)
        visual = pooled = None
        if entries is not None and self.explainer.needs_gradients:  # gradients flow through the whole window
            visual = torch.stack([maps for maps, _ in entries], dim=1)[None]
        elif entries is not None:  # the decision reads the pooled window; only the kept samples are explained
            visual = torch.stack([maps for maps, _ in entries[track.decided - lo:limit - lo]], dim=1)[None]
            pooled = torch.stack([pool for _, pool in entries], dim=1)[None]
        faces = torch.from_numpy(np.stack(track.crops.slice(lo, hi)))[None].to(self.device)
        before, after = self.model.audio_context
        audio = torch.from_numpy(self.audio.span(lo * SAMPLES_PER_FRAME - before, hi * SAMPLES_PER_FRAME + after))
        sound = None
        if self.sound is not None and visual is not None:
            with self.timer.stage("model", self.device):
                sound = self.sound.span(lo, hi)[None]
        return _Window(track, limit, lo, hi, visual, pooled, faces, audio[None].to(self.device), sound)

    def _keep(self, window: _Window, scores: ClipScores) -> None:
        """Store the decided samples' results on the track; forget what no later window needs."""
        track, keep = window.track, window.kept
        probs, reported = scores.probs[keep].cpu().numpy(), scores.scores[keep].cpu().numpy()
        maps = scores.maps[self.explainer.name].float().cpu().numpy()  # the kept samples' only
        with self.timer.stage(f"{self.explainer.name}_maps"):
            peaks = map_peaks(maps, CROP_SIZE)
        channels = scores.channels if scores.channels is not None else [[] for _ in range(len(probs))]
        for k in range(len(probs)):
            heat = None if np.isnan(peaks[k, 0]) else maps[k].astype(np.float16)
            track.results.append(SampleResult(float(probs[k]), float(reported[k]), heat, peaks[k], channels[k]))
        self._forget_before(track, window.limit - self.context)

    def _forget_before(self, track: LiveTrack, sample: int) -> None:
        """Drop crops and maps no later window of ``track`` can need (those before ``sample``; crops the encoder
        has yet to take, or whose reach it still needs, stay)."""
        encoded = self._encoded.get(track)
        keep = sample
        if encoded is not None:
            keep = min(keep, encoded.fed if encoded.stream is not None else encoded.maps.end - (self.radius or 0))
            encoded.maps.trim(sample)
        track.crops.trim(keep)

    def warm_up(self, faces: int = 2, stopped: Callable[[], bool] = lambda: False) -> None:
        """Decide blank crops for 1 and for ``faces`` faces at once, as a stream would, until the windows are as
        long as they get (context + hop + lookahead), so the first real frames do not wait for the kernels of
        each new shape to be prepared (at lookahead 2 s a stream's first second was decided 0.8 s late). Ends
        after the step where ``stopped()`` first says so (a stop asked for meanwhile)."""
        blank = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
        samples = self.context + self.lookahead + 2 * self.hop + 1
        for count in sorted({1, faces}):
            tracks = [LiveTrack(-1 - k, 0) for k in range(count)]
            for sample in range(samples):
                if stopped():
                    return
                for track in tracks:
                    track.crops.append(blank)
                    track.boxes.append(np.zeros(4))
                self.step(tracks, sample + 1)
            for track in tracks:
                track.open = False
            self.step(tracks, samples)
            for track in tracks:
                self.drop(track)
        self.sound = self._sound_stream()  # what it heard was the warm-up's silence

    def _sound_stream(self) -> SoundStream | None:
        return SoundStream(self.model, self.audio, self.device) if hasattr(self.model, "decide") else None

    def forget_sound_before(self, sample: int) -> int:
        """No later window starts before ``sample``: forget the audio embeddings before it. Returns the first sample
        whose waveform a later step reads."""
        if self.sound is None:
            return sample
        self.sound.trim(sample)
        return min(sample, self.sound.needed_from())

    def drop(self, track: LiveTrack) -> None:
        """A track fully emitted: forget its maps."""
        self._encoded.pop(track, None)
