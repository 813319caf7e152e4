"""THE scoring engine: a face track's per-frame speaking probabilities and — on request — each explainer's
maps from the same forward pass, window by window. ``evaluate``, ``render`` and ``explain-eval`` all score
through here, so a track gets the same scores whichever command asks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Iterator, Sequence

import numpy as np
import torch

from asd_se.core.errors import NonFiniteOutput
from asd_se.core.media import MODEL_FPS, SAMPLES_PER_FRAME
from asd_se.core.options import Range
from asd_se.core.timing import StageTimer
from asd_se.explain.base import Explainer
from asd_se.models import AsdModel
from asd_se.models.output import ASDOutput
from asd_se.models.visual import TwoStreamModel


WINDOW_FRAMES = 1000  # 40 s: longer tracks are scored in overlapping windows
DURATION = Range(1 / MODEL_FPS)  # a multi-duration piece (seconds) holds at least one frame


def windows(frames: int, window: int = WINDOW_FRAMES) -> list[tuple[int, int, int, int]]:
    """``(start, end, keep_start, keep_end)`` windows covering ``frames``; overlap by half, and each frame is
    taken from the window where it lies most central (context on both sides)."""
    if frames <= window:
        return [(0, frames, 0, frames)]
    hop = window // 2
    starts = list(range(0, frames - window, hop)) + [frames - window]
    spans = []
    for i, start in enumerate(starts):
        keep_start = 0 if i == 0 else (start + window // 4 if i < len(starts) - 1 else spans[-1][3])
        keep_end = frames if i == len(starts) - 1 else start + 3 * window // 4
        spans.append((start, start + window, keep_start, keep_end))
    return spans


def live_windows(frames: int, context: int, lookahead: int, hop: int = 1) -> list[tuple[int, int, int, int]]:
    """``windows``' spans as ``asd-se live`` decides a track of ``frames`` (``live/decide.py``): ``hop`` frames at a
    time, each window holding up to ``context`` frames before them and ``lookahead`` after."""
    return [(max(0, start - context), min(frames, start + hop + lookahead), start, min(frames, start + hop))
            for start in range(0, frames, hop)]


def audio_span(audio: np.ndarray, start: int, end: int, context: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The samples of frames ``[start, end)`` of 16 kHz ``audio (N,)`` (frame 0 at sample 0) with ``context``
    ``(before, after)`` samples around them, zeros where the audio does not reach:
    ``(before + 640·(end − start) + after,)``."""
    before, after = context
    first, last = start * SAMPLES_PER_FRAME - before, end * SAMPLES_PER_FRAME + after
    piece = audio[max(first, 0):max(min(last, len(audio)), 0)]
    head = max(0, -first)
    return np.pad(piece, (head, last - first - head - len(piece)))


def iter_windows(faces, audio: np.ndarray, device: torch.device, window: int = WINDOW_FRAMES,
                 context: tuple[int, int] = (0, 0)) -> Iterator[tuple[slice, slice, torch.Tensor, torch.Tensor]]:
    """A track ``faces (T, S, S)`` uint8 (an array, or anything sliceable with a length) and ``audio (640·T,)``
    (longer is fine) window by window: the track frames the window decides, where those lie inside the window,
    and the window's model inputs ``(1, L, S, S)`` and ``(1, before + 640·L + after)`` on ``device``."""
    for start, end, keep_start, keep_end in windows(len(faces), window):
        clip = torch.from_numpy(np.ascontiguousarray(faces[start:end]))[None].to(device)
        sound = torch.from_numpy(np.ascontiguousarray(audio_span(audio, start, end, context), np.float32))
        yield slice(keep_start, keep_end), slice(keep_start - start, keep_end - start), clip, sound[None].to(device)


@dataclass
class ClipScores:
    """One clip of T frames: speaking probabilities ``probs (T,)`` of the audio-visual head and
    ``audio_probs``/``visual_probs (T,)`` of the auxiliary heads; ``maps`` per explainer name ``(T, h, w)`` in
    [0, 1] (``(K, h, w)`` where ``score_clips`` explained K of the frames); ``scores (T,)`` the score the model's
    authors report (``ASDOutput.scores``, else the AV logit); ``se_weights`` ``(C,)`` or ``(T, C)`` where the model
    has an SE block; ``channels`` per explained frame, the channels an explainer selected (the SE map's, highest
    SE value first)."""

    probs: torch.Tensor
    audio_probs: torch.Tensor
    visual_probs: torch.Tensor
    scores: torch.Tensor
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    se_weights: torch.Tensor | None = None
    channels: list[list[int]] | None = None


def _heads(output) -> torch.Tensor:
    """``(B, 4, T)``: per clip of an ASDOutput, the three heads' logits and the reported score."""
    reported = output.logits if output.scores is None else output.scores
    return torch.stack([output.logits, output.audio_logits, output.visual_logits, reported], dim=1).float()


def _clip(output: ASDOutput, index: int) -> ASDOutput:
    """The ASDOutput of clip ``index`` of a batch (every tensor ``(1, ...)``)."""
    return ASDOutput(**{f.name: None if getattr(output, f.name) is None else getattr(output, f.name)[index:index + 1]
                        for f in fields(ASDOutput)})


def _pieces_alone(model: AsdModel, faces: torch.Tensor, audio: torch.Tensor, step: int) -> torch.Tensor:
    """``(B, 4, T)`` as ``_heads``, the clips scored in consecutive pieces of ``step`` frames, one model call per
    piece (any model: onnxruntime's too)."""
    frames, extra = faces.shape[1], sum(model.audio_context)  # a piece's audio context lies inside the clip's
    return torch.cat([_heads(model(faces[:, start:start + step],
                                   audio[:, start * SAMPLES_PER_FRAME:
                                         min(frames, start + step) * SAMPLES_PER_FRAME + extra]))
                      for start in range(0, frames, step)], dim=2)


class _PieceMaps:
    """The pooled visual maps of pieces ``[start, end)`` of clips ``faces (B, T, S, S)``, exactly as each piece
    encoded alone has them, from the clips' own maps ``(B, C, T, h, w)``: a frame further than the encoder's
    ``temporal_radius`` R from a piece's edges sees only frames inside it, so only the R frames at each inner
    edge differ — those come from the 2R frames beside the edge encoded on their own, once per edge whichever
    piece length needs it (Light-ASD's durations share most edges). Pieces shorter than 4R, whose edges would
    cost more than they do, are encoded whole."""

    def __init__(self, model: TwoStreamModel, faces: torch.Tensor, maps: torch.Tensor):
        self.model, self.faces, self.pooled = model, faces, model.pool(maps)
        self.radius = model.visual.temporal_radius
        self.edges: dict[tuple[str, int], torch.Tensor] = {}  # ("start" | "end", frame) -> (B, C, R, 2)

    def _pool(self, faces: torch.Tensor) -> torch.Tensor:
        return self.model.pool(self.model.visual_maps(faces))

    def _encode_edges(self, spans: Sequence[tuple[int, int]]) -> None:
        """Encode, in one batch per side, the inner edges of ``spans`` not encoded yet."""
        frames, reach = self.faces.shape[1], 2 * self.radius
        for side, edges in (("start", {start for start, _ in spans if start > 0}),
                            ("end", {end for _, end in spans if end < frames})):
            edges = sorted(edge for edge in edges if (side, edge) not in self.edges)
            if not edges:
                continue
            chunks = torch.cat([self.faces[:, edge:edge + reach] if side == "start" else
                                self.faces[:, edge - reach:edge] for edge in edges])  # (n·B, 2R, S, S)
            pooled = self._pool(chunks)
            pooled = pooled[:, :, :self.radius] if side == "start" else pooled[:, :, self.radius:]
            for i, edge in enumerate(edges):
                self.edges[side, edge] = pooled[i * len(self.faces):(i + 1) * len(self.faces)]

    def stack(self, spans: Sequence[tuple[int, int]]) -> torch.Tensor:
        """``(B·n, C, L, 2)`` for ``n`` spans of one length L, clip-major (clip b's pieces at ``b·n …``)."""
        start, end = spans[0]
        if end - start < 4 * self.radius:
            return self._pool(torch.stack([self.faces[:, s:e] for s, e in spans], dim=1).flatten(0, 1))
        self._encode_edges(spans)
        r, pooled = self.radius, self.pooled
        return torch.stack([torch.cat([self.edges.get(("start", s), pooled[:, :, s:s + r]), pooled[:, :, s + r:e - r],
                                       self.edges.get(("end", e), pooled[:, :, e - r:e])], dim=2)
                            for s, e in spans], dim=1).flatten(0, 1)


def _pieces_reused(pieces: _PieceMaps, audio: torch.Tensor, step: int) -> torch.Tensor:
    """``_pieces_alone``'s scores for a TwoStreamModel, each piece decided from ``pieces``' maps: the whole pieces
    of every clip in one batch, then the shorter last one."""
    model, (batch, frames) = pieces.model, pieces.faces.shape[:2]
    extra = sum(model.audio_context)
    whole = frames // step
    parts = []
    if whole:
        sound = audio.unfold(1, step * SAMPLES_PER_FRAME + extra, step * SAMPLES_PER_FRAME)[:, :whole]
        output = model.decide_pooled(pieces.stack([(i * step, (i + 1) * step) for i in range(whole)]),
                                     model.sound(sound.flatten(0, 1), step))
        parts.append(_heads(output).reshape(batch, whole, 4, step).permute(0, 2, 1, 3).flatten(2))
    if frames % step:
        start = whole * step
        parts.append(_heads(model.decide_pooled(pieces.stack([(start, frames)]),
                                                model.sound(audio[:, start * SAMPLES_PER_FRAME:], frames - start))))
    return torch.cat(parts, dim=2)


def _over_durations(model: AsdModel, faces: torch.Tensor, audio: torch.Tensor, durations: Sequence[float],
                    maps: torch.Tensor) -> torch.Tensor:
    """``(B, 4, T)`` as ``_heads``, each the mean over ``durations`` (seconds) of the clips scored in consecutive
    pieces of that length (Light-ASD's multi-duration inference: short pieces see less context, and the mean
    is steadier than any one length). ``maps`` ``(B, C, T, h, w)``: the clips' own explained layer, which a
    TwoStreamModel's pieces reuse (``_PieceMaps``)."""
    steps = Counter(max(1, round(seconds * MODEL_FPS)) for seconds in durations)  # listed n times: weighs n
    reused = _PieceMaps(model, faces, maps) if isinstance(model, TwoStreamModel) else None
    total = sum(count * (_pieces_reused(reused, audio, step) if reused is not None
                         else _pieces_alone(model, faces, audio, step)) for step, count in steps.items())
    return total / len(durations)


def _explain(explainer: Explainer, model: AsdModel, maps: torch.Tensor, audio: torch.Tensor, clip: ASDOutput,
             span: slice, cut: bool = False) -> torch.Tensor:
    """``explainer``'s maps ``(K, h, w)`` of frames ``span`` of one clip (maps ``(1, C, T, h, w)``, or of those
    frames only where ``cut``; audio ``(1, N)``). A map of one frame reads only that frame's activations and SE
    vector, so only those are explained; a gradient method differentiates the whole clip's decision, then keeps
    the frames asked for."""
    if explainer.needs_gradients or span == slice(None):
        return explainer(model, maps, audio, clip)[span]
    first, last, _ = span.indices(clip.logits.shape[1])
    heard = audio[:, first * SAMPLES_PER_FRAME:last * SAMPLES_PER_FRAME + sum(model.audio_context)]
    return explainer(model, maps if cut else maps[:, :, span], heard, clip.frames(span))


def score_clips(model: AsdModel, faces: torch.Tensor, audio: torch.Tensor, explainers: Sequence[Explainer] = (),
                timer: StageTimer | None = None, durations: Sequence[float] = (),
                visual: torch.Tensor | None = None, explained: slice | Sequence[slice] = slice(None),
                pooled: torch.Tensor | None = None, sound: torch.Tensor | None = None) -> list[ClipScores]:
    """Faces ``(B, T, S, S)`` + audio ``(B, 640·T)``, or with ``model.audio_context`` ``(B, before + 640·T + after)``
    -> ClipScores per clip: one forward pass for the batch (clips of one length; each decided as if alone), then
    each explainer per clip from its activations and output. With ``durations`` (seconds), the scores are the
    mean over those piece lengths (``_over_durations``); the maps still come from the whole clip's pass.
    ``visual`` ``(B, C, T, h, w)``: the explained layer of these faces, already computed (``asd-se live`` encodes
    each frame once); the pass then starts from it (``model.decide``). ``explained``: the frames whose maps and
    channels are made, for every clip or per clip (``asd-se live`` keeps a few of each window); the scores are
    every frame's. ``pooled`` ``(B, C, T, 2)``: what a TwoStreamModel's decision reads of the explained layer,
    already pooled (``model.pool``; live keeps it per sample); ``visual`` then holds the maps of the ``explained``
    frames only (one span for every clip; no durations, no gradient explainers). ``sound`` ``(B, T, D)``: the audio
    embedding of these frames, already computed (live encodes each sample's once); with ``visual`` only. Time goes
    to ``timer``'s stages ``model`` and ``<name>_maps``."""
    timer = timer or StageTimer()
    model.eval()
    if pooled is not None and (durations or not isinstance(explained, slice) or
                               any(explainer.needs_gradients for explainer in explainers)):
        raise ValueError("pooled maps take one explained span, no durations and no gradient explainer")
    if sound is not None and visual is None:
        raise ValueError("an audio embedding given needs the visual maps given too")
    if audio.shape[1] == faces.shape[1] * SAMPLES_PER_FRAME:  # no context given: zeros, as the model trained
        audio = torch.nn.functional.pad(audio, model.audio_context)
    with timer.stage("model", faces.device), torch.no_grad():
        if pooled is not None:
            heard = model.sound(audio, pooled.shape[2]) if sound is None else sound
            output, maps = model.decide_pooled(pooled, heard, explain=True), visual
        else:
            output = (model(faces, audio, explain=True) if visual is None  # decide(visual_maps(faces)); or ONNX's
                      else model.decide(visual, audio, explain=True, sound=sound))
            maps = output.feature_maps.transpose(1, 2)  # (B, C, T, h, w), the explained layer
        heads = _over_durations(model, faces, audio, durations, maps) if durations else _heads(output)
    if not torch.isfinite(heads).all():
        frames = int((~torch.isfinite(heads)).any(dim=1).sum())
        raise NonFiniteOutput(f"{getattr(model, 'source', 'the model')}: the model's scores are NaN or infinite "
                              f"on {frames} of {heads.shape[0] * heads.shape[2]} frames; this model cannot be used")
    spans = [explained] * faces.shape[0] if isinstance(explained, slice) else list(explained)
    results = []
    for index, span in enumerate(spans):
        clip = _clip(output, index)
        probs = torch.sigmoid(heads[index, :3])
        scores = ClipScores(*probs, heads[index, 3], se_weights=None if clip.se_weights is None else clip.se_weights[0])
        for explainer in explainers:
            with timer.stage(f"{explainer.name}_maps", faces.device):
                scores.maps[explainer.name] = _explain(explainer, model, maps[index:index + 1], audio[index:index + 1],
                                                       clip, span, cut=pooled is not None)
                scores.channels = scores.channels or explainer.channels(clip.frames(span))
        results.append(scores)
    return results


def score_clip(model: AsdModel, faces: torch.Tensor, audio: torch.Tensor, explainers: Sequence[Explainer] = (),
               timer: StageTimer | None = None, durations: Sequence[float] = (),
               visual: torch.Tensor | None = None) -> ClipScores:
    """``score_clips`` of one clip: faces ``(1, T, S, S)``, audio ``(1, ...)``, ``visual`` ``(1, C, T, h, w)``."""
    return score_clips(model, faces, audio, explainers, timer, durations, visual)[0]


@dataclass
class TrackScores:
    """Per frame of a track (T frames): ``probs``, ``audio_probs``, ``visual_probs`` and the reported ``scores``
    ``(T,)`` float32; ``maps`` per explainer ``(T, h, w)`` float16 in [0, 1]; ``channels`` per frame (empty lists
    without an SE map)."""

    probs: np.ndarray
    audio_probs: np.ndarray
    visual_probs: np.ndarray
    scores: np.ndarray
    maps: dict[str, np.ndarray]
    channels: list[list[int]]


def score_track(model: AsdModel, faces, audio: np.ndarray, device: torch.device,
                explainers: Sequence[Explainer] = (), window: int = WINDOW_FRAMES,
                timer: StageTimer | None = None, durations: Sequence[float] = ()) -> TrackScores:
    """Every frame of a track ``faces (T, S, S)`` (see ``iter_windows``) with ``audio (640·T,)`` (and, where the
    caller has them, the ``model.audio_context`` samples around it; zeros otherwise)."""
    count = len(faces)
    heads = np.zeros((4, count), np.float32)
    maps: dict[str, np.ndarray] = {}
    channels: list[list[int]] = [[] for _ in range(count)]
    for frames, inside, clip, sound in iter_windows(faces, audio, device, window, model.audio_context):
        scores = score_clip(model, clip, sound, explainers, timer, durations)
        heads[:, frames] = torch.stack([scores.probs, scores.audio_probs, scores.visual_probs,
                                        scores.scores])[:, inside].cpu().numpy()
        for name, low in scores.maps.items():
            maps.setdefault(name, np.zeros((count, *low.shape[1:]), np.float16))[frames] = low[inside].cpu().numpy()
        if scores.channels is not None:
            channels[frames] = scores.channels[inside]
    return TrackScores(*heads, maps, channels)
