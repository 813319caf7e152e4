"""How render and live time a file's frames: one timeline per input, the policy both share.

A stream's time is its timestamp minus its origin: the file's start time (the earliest of its streams), so that
picture and sound keep the offset the file gives them. A stream whose first frame lies more than ``CLOCK_GAP_S``
after the file's start (a video stamped from 1e9 s beside audio from 0) is on a clock of its own: it is timed from
its own first frame, and a note says so. Within a stream, time only goes on: where the timestamps jump back, or
more than ``JUMP_S`` ahead (files joined end to end, an encoder restarted), that stream's clock goes on from its
last frame; a video frame stamped no later than the last is placed one nominal frame after it; a frame without
a timestamp follows the last. Each cause is said once, with how often it happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

JUMP_S = 10.0  # timestamps jumping back (a tenth of this) or ahead (this) are a discontinuity
CLOCK_GAP_S = 10.0  # a stream starting this long after the file's start is on a clock of its own


@dataclass
class _Cause:
    first: str  # the sentence of its first occurrence
    count: int = 1


@dataclass
class StreamClock:
    """Frame times in seconds on the input's one timeline (see the module). ``fps``: the video's nominal rate;
    ``start``: the file's start time (s, on its timestamps); ``align``: whether a stream starting far after it
    is timed from its own first frame (only where decoding starts at the file's beginning: after a seek the first
    frame seen is not the stream's first)."""

    spec: str
    fps: float
    start: Real = 0.0
    align: bool = True
    origins: dict[str, Real] = field(default_factory=dict)  # per kind, the timestamp that is time 0
    _last: dict[str, float] = field(default_factory=dict)
    _shift: dict[str, float] = field(default_factory=lambda: {"video": 0.0, "audio": 0.0})
    _causes: dict[str, _Cause] = field(default_factory=dict)

    def origin(self, kind: str, stamp: Real | None = None) -> Real:
        """The timestamp that is time 0 for ``kind``, fixed by its first frame's ``stamp``."""
        if kind not in self.origins:
            late = self.align and stamp is not None and stamp - self.start > CLOCK_GAP_S
            self.origins[kind] = stamp if late else self.start
            if late:
                self._said(f"{kind} clock", f"the {kind} starts at {float(stamp):.2f} s, "
                                            f"{float(stamp - self.start):.2f} s after the file's start: its own "
                                            f"clock, timed from its first frame")
        return self.origins[kind]

    def time(self, kind: str, stamp: Real | None, duration: float | None = None) -> float:
        """The time (s) of a ``kind`` frame whose timestamp is ``stamp`` (s; a Fraction keeps a stream stamped
        from 1e9 s exact; None: it has none) and which lasts ``duration`` s (default: one nominal video frame)."""
        step = duration if duration is not None else 1.0 / self.fps
        last = self._last.get(kind)
        origin = self.origin(kind, stamp)
        if stamp is None:
            time = last + step if last is not None else 0.0
        else:
            time = float(stamp - origin) + self._shift[kind]  # exact where both are Fractions
            if last is not None and not last - JUMP_S / 10 < time < last + JUMP_S:
                self._said(f"{kind} jump", f"the {kind} timestamps jump from {last:.2f} s to {time:.2f} s; its "
                                           f"clock goes on from the frame before")
                self._shift[kind] += last + step - time
                time = last + step
            elif kind == "video" and last is not None and time <= last:
                self._said("video repeat", "video frames with the same or earlier timestamps than the one before; "
                                           "each is placed one nominal frame after it")
                time = last + step
        self._last[kind] = time
        return time

    def _said(self, cause: str, sentence: str) -> None:
        if cause in self._causes:
            self._causes[cause].count += 1
        else:
            self._causes[cause] = _Cause(sentence)

    @property
    def notes(self) -> list[str]:
        """One sentence per cause met, with how many times it happened."""
        return [f"{self.spec}: {cause.first}" + (f" ({cause.count} times in all)" if cause.count > 1 else "")
                for cause in self._causes.values()]
