"""A face over consecutive frames and its 25 fps samples (``RenderTrack``), and the faces found by detection +
tracking (``FaceFinder``): what render and live both follow."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from asd_se.core.annotations import Row
from asd_se.core.boxes import interpolate_boxes
from asd_se.core.crop import smooth_crop_boxes
from asd_se.core.media import MODEL_FPS
from asd_se.core.sampling import sample_grid
from asd_se.faces.detect import Detection, FaceDetector
from asd_se.faces.shots import ShotCutDetector
from asd_se.faces.track import IouTracker


@dataclass
class RenderTrack:
    """One face over consecutive source frames, and its 25 fps samples (what the model sees).

    ``frames (N,)`` source frame indices, ``boxes (N, 4)`` pixels ``(x1, y1, x2, y2)`` per frame;
    ``sample_times (T,)`` s and ``sample_boxes (T, 4)`` pixels; ``frame_samples (N,)`` the sample each source
    frame shows. ``rows`` (annotation mode): each annotation row of the track with the sample it falls on.
    """

    track_id: int
    name: str
    frames: np.ndarray
    boxes: np.ndarray
    sample_times: np.ndarray
    sample_boxes: np.ndarray
    frame_samples: np.ndarray
    rows: list[tuple[Row, int]] | None = None

    def crop_boxes(self, crop: str) -> np.ndarray:
        """``(T, 4)`` pixels: per sample, the box THE crop of style ``crop`` is cut around (lightasd: smoothed)."""
        return smooth_crop_boxes(self.sample_boxes, crop)

    def shown_boxes(self, crop: str) -> np.ndarray:
        """``(N, 4)`` pixels: per source frame, the crop's box of the sample it shows — where a render places
        the heatmap and reports its region and peak."""
        return self.crop_boxes(crop)[self.frame_samples]


def frame_samples(times: np.ndarray, sample_times: np.ndarray) -> np.ndarray:
    """``(N,)`` the 25 fps sample nearest each source frame time ``(N,)``."""
    return np.clip(np.round((times - sample_times[0]) * MODEL_FPS), 0, len(sample_times) - 1).astype(int)


class FaceFinder:
    """Detection every ``detect_every`` frames (and on every shot cut) feeding an IoU tracker.

    For each frame in order ``needs_detection``; where it says so, detect (``detector``, possibly in another
    process) and hand the result to ``track`` in frame order; at the end ``tracks``. Detections less than
    ``min_face`` pixels tall are ignored and counted in ``too_small``.
    """

    def __init__(self, detector: FaceDetector, detect_every: int = 5, min_face: int = 12,
                 min_track_s: float = 0.4):
        self.detector, self.detect_every, self.min_face = detector, max(1, detect_every), min_face
        self.min_track_s = min_track_s
        self.shots = ShotCutDetector()
        self.tracker: IouTracker | None = None
        self.too_small = 0
        self.cut_frames: set[int] = set()
        self.detected_frames: list[int] = []

    def _max_gap(self) -> int:
        """Frames a track may go undetected and continue: three detections' worth, at least 10."""
        return max(10, 3 * self.detect_every)

    def set_detect_every(self, every: int) -> None:
        """Detect every ``every`` frames from now on (a live run falling behind); the tracker's gaps follow."""
        self.detect_every = max(1, every)
        if self.tracker is not None:
            self.tracker.max_gap = self._max_gap()

    def needs_detection(self, index: int, thumb: np.ndarray) -> bool:
        """Register frame ``index``'s grey thumbnail ``(36, 64)``; True if this frame must be detected on
        (every ``detect_every``-th frame, and the first frame of every shot)."""
        if self.shots(thumb):
            self.cut_frames.add(index)
        if index in self.cut_frames or index % self.detect_every == 0:
            self.detected_frames.append(index)
            return True
        return False

    def track(self, index: int, detections: list[Detection], fps: float) -> None:
        """Hand frame ``index``'s detections to the tracker, in frame order (a shot cut first closes every
        track). The tracker is made on first use: its gaps and minimum length in frames follow the rate."""
        if self.tracker is None:
            self.tracker = IouTracker(max_gap=self._max_gap(),
                                      min_length=max(2, int(round(self.min_track_s * fps))), smooth=5)
        if index in self.cut_frames:
            self.tracker.cut()
        kept = [d for d in detections if d.box[3] - d.box[1] >= self.min_face]
        self.too_small += len(detections) - len(kept)
        self.tracker.update(index, kept)

    def tracks(self, frame_times: np.ndarray) -> list[RenderTrack]:
        """The finished tracks, sampled at 25 fps (``frame_times (N,)`` s of every source frame). A track holds
        its last box until the next detection that no longer found it (or the end of the video)."""
        tracks = []
        for face in (self.tracker.finish() if self.tracker is not None else []):
            after = bisect.bisect_right(self.detected_frames, face.frames[-1])
            end = self.detected_frames[after] - 1 if after < len(self.detected_frames) else len(frame_times) - 1
            held = np.arange(face.frames[-1] + 1, end + 1)
            face.frames = np.concatenate([face.frames, held])
            face.boxes = np.concatenate([face.boxes, np.repeat(face.boxes[-1:], len(held), axis=0)])
            times = frame_times[face.frames]
            sample_times = sample_grid(times[0], times[-1])
            tracks.append(RenderTrack(face.track_id, f"face{face.track_id}", face.frames, face.boxes, sample_times,
                                      interpolate_boxes(sample_times, times, face.boxes),
                                      frame_samples(times, sample_times)))
        return tracks
