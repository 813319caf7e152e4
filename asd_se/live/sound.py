"""The live stream's audio embedding, each sample's computed once.

The audio encoder's output for a sample reads the waveform only ``reach`` samples either side of it (its
convolutions and pools, ``temporal_radius``, and THE front end's windows beyond its context, ``reach``). Once that much has
arrived after a sample, its embedding is final — that of one pass over the whole recording — and kept; each step
then encodes only the newest samples with the reach before them, as a clip ending at the window's end has them
(zeros after it). A window therefore hears the recording before its first sample, as its streamed visual maps
see the track before it, where a clip scored alone hears zeros; on the newest samples both agree.
"""

from __future__ import annotations

import torch

from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.live.buffers import AudioRing, Ring
from asd_se.models import AsdModel


class SoundStream:
    """Embeddings ``(D,)`` per sample of the stream heard by ``audio``; ``model`` is a TwoStreamModel (``sound``,
    ``audio.temporal_radius``)."""

    def __init__(self, model: AsdModel, audio: AudioRing, device: torch.device):
        self.model, self.audio, self.device = model, audio, device
        self.reach = model.audio.temporal_radius + model.frontend.reach
        self.final = Ring()
        self._open: tuple[int, torch.Tensor] | None = None  # (end, the samples [final.end, end) as a clip ending there)

    def needed_from(self) -> int:
        """The first sample whose waveform a later step reads."""
        return max(0, self.final.end - self.reach)

    def advance(self, newest: int) -> None:
        """The waveform has arrived up to sample ``newest`` (and the front end's context after it): keep the
        embeddings that became final. Called once a step, before ``span``."""
        self._open = None  # the waveform after it may have arrived since
        done = newest - self.reach - self.final.end
        if done <= 0:
            return
        heard = self._encode(newest)
        self.final.extend(heard[:done].unbind(0))
        self._open = (newest, heard[done:])

    def span(self, first: int, last: int) -> torch.Tensor:
        """The embedding ``(last - first, D)`` of samples ``[first, last)``: the final ones kept, the others as a clip
        ending at ``last`` has them."""
        kept = self.final.slice(first, last)
        if last <= self.final.end:
            return torch.stack(kept)
        if self._open is None or self._open[0] != last:
            self._open = (last, self._encode(last))
        fresh = self._open[1][max(0, first - self.final.end):]
        return torch.cat([torch.stack(kept), fresh]) if kept else fresh

    def trim(self, before: int) -> None:
        """Forget the embeddings of samples before ``before``."""
        self.final.trim(before)

    def _encode(self, last: int) -> torch.Tensor:
        """Samples ``[final.end, last)`` ``(last - final.end, D)``, encoded with the reach before them."""
        first = max(0, self.final.end - self.reach)
        before, after = self.model.audio_context
        wave = self.audio.span(first * SAMPLES_PER_FRAME - before, last * SAMPLES_PER_FRAME + after)
        with torch.no_grad():
            heard = self.model.sound(torch.from_numpy(wave)[None].to(self.device), last - first)[0]
        return heard[self.final.end - first:]
