"""The faces of a live stream as frames arrive: render's FaceFinder (detection every K frames and at shot cuts,
the IoU tracker) run online, and every 25 fps sample's crop (THE crop) cut from the frame it falls on once its box
is settled — nothing waits for the end of the stream.

A sample's box follows render's rule as far as what has arrived allows: linear between the detections around it
(held after the last), and for the lightasd crop style the median filter over the boxes of the samples around it
(``smooth_crop_boxes``). That filter reads ``crop_future`` samples ahead, so a crop is cut that many samples late,
or as many as the lookahead allows (the rest of it left to the model), the filter narrowed to the boxes there are.
Boxes come from the detections of the frames before the one being placed (all in by then), and from its own only
where it waited for it (the stream's first frame, a shot's): the same stream gets the same crops however the
detector processes' timing falls.

Samples are on one grid for the whole stream (sample k at k/25 s from its start); a frame takes the samples
up to half a sample after its time that no earlier frame took, so a 30 fps source skips a sample's frame now
and then and a 15 fps one gives two samples the same frame, as render's nearest-frame rule does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from asd_se.core.boxes import interpolate_boxes
from asd_se.core.crop import CROP_SIZE, crop_future, face_crop, smooth_crop_boxes
from asd_se.core.media import MODEL_FPS
from asd_se.live.buffers import Ring
from asd_se.video.tracks import FaceFinder


@dataclass(eq=False)
class LiveTrack:
    """A face while it is on screen: its global 25 fps samples ``[first, end)`` with a crop ``(S, S)`` uint8 and
    the box ``(4,)`` pixels it was cut around, those shown but not cut yet up to ``shown``, the detections it was
    placed by (frames, boxes ``(4,)``), and (filled by the decider) per sample the results."""

    serial: int
    first: int
    crops: Ring = field(default_factory=Ring)
    boxes: Ring = field(default_factory=Ring)
    results: Ring = field(default_factory=Ring)  # per decided sample: a SampleResult
    open: bool = True  # False once the tracker has closed it: its last samples are decided with what there is
    shown: int = 0  # one past the last sample it is on
    detected: list[int] = field(default_factory=list)
    detections: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        for ring in (self.crops, self.boxes, self.results):
            ring.start = self.first
        self.shown = self.first

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
    """Feed frames in order with ``frame``; read ``tracks`` (every track not yet fully emitted). ``future``:
    samples a crop waits for (at most ``crop_future`` of the style)."""

    def __init__(self, finder: FaceFinder, crop: str, future: int = 0):
        self.finder, self.crop, self.future = finder, crop, future
        self.reach = crop_future(crop)  # the filter is centred: it reads as far back as ahead
        self.tracks: dict[int, LiveTrack] = {}
        self.next_sample: int | None = None  # the grid starts at the first frame
        self.sample_frames = Ring()  # per sample: the index of the frame it falls on
        self.pictures = Ring()  # per sample not cut for every face: its frame, grey (H, W)

    def samples_until(self, time: float) -> range:
        """The samples a frame at ``time`` s takes: up to half a sample after it, none taken before."""
        last = int(np.floor((time + 0.5 / MODEL_FPS) * MODEL_FPS + 1e-9))
        if self.next_sample is None:
            self.next_sample = max(0, last)
            self.sample_frames.start = self.pictures.start = self.next_sample
        taken = range(self.next_sample, max(self.next_sample, last + 1))
        self.next_sample = taken.stop
        return taken

    def frame(self, index: int, time: float, arrived: float, gray: np.ndarray, settled: int) -> FrameFaces:
        """Frame ``index`` (grey ``(H, W)``), every detection of the frames before ``settled`` handed to the
        finder: open and close live tracks as the tracker did, cut the crops ``(S, S)`` whose boxes are settled."""
        tracker = self.finder.tracker
        samples = self.samples_until(time)
        for _ in samples:
            self.sample_frames.append(index)
            self.pictures.append(gray)
        shown = []
        for serial, frames, boxes in (tracker.open_tracks() if tracker is not None else []):
            usable = int(np.searchsorted(frames, settled))  # a later frame's detection may be in: not used yet
            if usable:
                shown.append((serial, frames[:usable], boxes[:usable]))
        if tracker is not None:
            tracker.forget_closed()
            tracker.forget_before(settled)
        serials = {serial for serial, _, _ in shown}
        for track in self.tracks.values():
            track.open = track.open and track.serial in serials
        faces = []
        for serial, frames, boxes in shown:
            track = self.tracks.get(serial)
            if track is None:
                if not len(samples):
                    continue  # a face shows from the first sample it has a crop for
                track = self.tracks[serial] = LiveTrack(serial, samples.start)
            known = track.detected[-1] if track.detected else -1
            for frame, box in zip(frames, boxes):
                if frame > known:
                    track.detected.append(frame)
                    track.detections.append(np.asarray(box, np.float64))
            track.shown = max(track.shown, samples.stop)
            faces.append((track, interpolate_boxes(np.array([index]), np.array(track.detected),
                                                   np.array(track.detections))[0]))
        for track in self.tracks.values():
            self._cut(track)
        self._forget()
        return FrameFaces(index, time, arrived, self.next_sample - 1, faces)

    def _cut(self, track: LiveTrack) -> None:
        """Cut the crops of ``track`` whose boxes are settled: ``future`` samples have followed (all, once closed)."""
        stop = track.shown - (self.future if track.open else 0)
        if stop <= track.end:
            return
        lo = max(track.first, track.end - self.reach)  # the boxes the filter reads before the first cut
        frames = np.array(self.sample_frames.slice(lo, track.shown))
        boxes = interpolate_boxes(frames, np.array(track.detected), np.array(track.detections))
        boxes = smooth_crop_boxes(boxes, self.crop, open_end=track.open)
        for sample in range(track.end, stop):
            box = boxes[sample - lo]
            track.crops.append(face_crop(self.pictures.get(sample), tuple(box), CROP_SIZE, style=self.crop)[0])
            track.boxes.append(box)

    def _forget(self) -> None:
        """Drop the pictures every face has been cut from, the frame indices and detections no box needs again."""
        if self.next_sample is None:  # no frame yet: nothing is held
            return
        pending = [track.end for track in self.tracks.values() if track.open] + [self.next_sample]
        self.pictures.trim(min(pending))
        needed = min(min(pending) - self.reach, self.next_sample - 1)  # the newest sample's frame: always kept
        self.sample_frames.trim(needed)
        if needed < self.sample_frames.start:
            return
        frame = self.sample_frames.get(needed)
        for track in self.tracks.values():
            keep = max(0, int(np.searchsorted(track.detected, frame, side="right")) - 1)
            del track.detected[:keep], track.detections[:keep]

    def close_all(self) -> None:
        """The stream ended: every track is complete, its last crops cut."""
        for track in self.tracks.values():
            track.open = False
            self._cut(track)
        self._forget()

    def restart(self) -> None:
        """The picture changed size: every track ends here (as at a shot cut), detection starts afresh."""
        if self.finder.tracker is not None:
            self.finder.tracker.cut()
            self.finder.tracker.forget_closed()
        self.close_all()
