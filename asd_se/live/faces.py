"""The faces of a live stream as frames arrive: render's FaceFinder (detection every K frames and at shot cuts,
the IoU tracker) run online, each open track's box held between detections, and every 25 fps sample's crop cut
(THE crop) from the frame it falls on — nothing waits for the end of the stream.

Samples are on one grid for the whole stream (sample k at k/25 s from its start); a frame takes the samples
up to half a sample after its time that no earlier frame took, so a 30 fps source skips a sample's frame now
and then and a 15 fps one gives two samples the same frame, as render's nearest-frame rule does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asd_se.core.crop import CROP_SIZE, face_crop
from asd_se.core.media import MODEL_FPS
from asd_se.live.buffers import Ring
from asd_se.render.tracks import FaceFinder


@dataclass(eq=False)
class LiveTrack:
    """A face while it is on screen: its global 25 fps samples ``[first, end)``, the crop ``(S, S)`` uint8 and
    the box ``(4,)`` pixels it was cut around per sample, and (filled by the decider) per sample the results."""

    serial: int
    first: int
    crops: Ring = field(default_factory=Ring)
    boxes: Ring = field(default_factory=Ring)
    results: Ring = field(default_factory=Ring)  # per decided sample: a SampleResult
    open: bool = True  # False once the tracker has closed it: its last samples are decided with what there is

    def __post_init__(self) -> None:
        for ring in (self.crops, self.boxes, self.results):
            ring.start = self.first

    @property
    def name(self) -> str:
        return f"face{self.serial}"

    @property
    def end(self) -> int:
        """One past its last sample with a crop."""
        return self.crops.end

    @property
    def decided(self) -> int:
        """One past its last decided sample."""
        return self.results.end


@dataclass
class FrameFaces:
    """One source frame waiting for its decisions: ``index``, ``time`` s, when it arrived, the 25 fps sample it
    shows, the tracks on it with their boxes ``(4,)``, and its picture where outputs draw on it."""

    index: int
    time: float
    arrived: float
    sample: int
    faces: list[tuple[LiveTrack, np.ndarray]]
    image: np.ndarray | None = None


class LiveFaces:
    """Feed frames in order with ``frame``; read ``tracks`` (every track not yet fully emitted)."""

    def __init__(self, finder: FaceFinder, crop: str):
        self.finder, self.crop = finder, crop
        self.tracks: dict[int, LiveTrack] = {}
        self.next_sample: int | None = None  # the grid starts at the first frame

    def samples_until(self, time: float) -> range:
        """The samples a frame at ``time`` s takes: up to half a sample after it, none taken before."""
        last = int(np.floor((time + 0.5 / MODEL_FPS) * MODEL_FPS + 1e-9))
        if self.next_sample is None:
            self.next_sample = max(0, last)
        taken = range(self.next_sample, max(self.next_sample, last + 1))
        self.next_sample = taken.stop
        return taken

    def frame(self, index: int, time: float, arrived: float, gray: np.ndarray) -> FrameFaces:
        """Frame ``index`` (its detections, where it had any, already handed to the finder): open and close
        live tracks as the tracker did, cut this frame's samples' crops ``(H, W)`` grey -> ``(S, S)``."""
        tracker = self.finder.tracker
        shown = tracker.open_tracks() if tracker is not None else []
        if tracker is not None:
            tracker.forget_closed()
        serials = {serial for serial, _, _ in shown}
        for track in self.tracks.values():
            track.open = track.open and track.serial in serials
        samples = self.samples_until(time)
        faces = []
        for serial, _, box in shown:
            track = self.tracks.get(serial)
            if track is None:
                if not len(samples):
                    continue  # a face shows from the first sample it has a crop for
                track = self.tracks[serial] = LiveTrack(serial, samples.start)
            for _ in samples:
                track.crops.append(face_crop(gray, tuple(box), CROP_SIZE, style=self.crop)[0])
                track.boxes.append(np.asarray(box, np.float64))
            faces.append((track, np.asarray(box, np.float64)))
        return FrameFaces(index, time, arrived, self.next_sample - 1, faces)

    def close_all(self) -> None:
        """The stream ended: every track is complete."""
        for track in self.tracks.values():
            track.open = False

    def restart(self) -> None:
        """The picture changed size: every track ends here (as at a shot cut), detection starts afresh."""
        if self.finder.tracker is not None:
            self.finder.tracker.cut()
            self.finder.tracker.forget_closed()
        self.close_all()
