"""``asd-se live SOURCE``: one pass over a stream as it arrives — decode, detect + track (render's FaceFinder),
crop (THE crop), score and explain (THE scoring engine, ``live/decide.py``) — with decisions leaving in frame order
(``live/emit.py``) as JSON lines, and optionally an annotated fragmented MP4 and a served page.

Latency is bounded by ``--lookahead`` (the future a decision waits for) plus ``--hop`` and the compute; memory by
``--context`` (the past a window keeps). When a paced source outruns the machine the run degrades in a stated
order, each step said in the stream: decide every other hop, detect less often (down to a quarter as often),
then drop frames.
SIGINT and SIGTERM, a stall and a stream that ends in an error all end the same way: what can be decided is,
the outputs are closed (the MP4 playable), the last line says why.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import av
import cv2
import numpy as np

from asd_se.core.crop import crop_future
from asd_se.core.devices import resolve_device
from asd_se.core.errors import MediaError, RenderError
from asd_se.core.fsio import check_outputs, standard_output, stream_errors
from asd_se.core.media import MODEL_FPS, SAMPLES_PER_FRAME, FrameConverter, MonoAudio
from asd_se.core.options import AT_LEAST_ONE, FRACTION, NOT_NEGATIVE, Range, check_settings, setting
from asd_se.core.signals import StopRequest
from asd_se.core.timing import StageTimer
from asd_se.core.writer import X264_PRESETS, VideoWriter
from asd_se.explain import EXPLAINERS, ChannelSelection
from asd_se.faces.detect import FaceDetector
from asd_se.faces.pool import DetectionPool
from asd_se.faces.shots import THUMB_SIZE
from asd_se.live.buffers import AudioRing
from asd_se.live.decide import LiveDecider
from asd_se.live.emit import Emitter
from asd_se.live.faces import FrameFaces, LiveFaces
from asd_se.live.serve import LiveServer
from asd_se.live.source import Arrival, Ended, LiveSource, Stalled, source_kind
from asd_se.models.loading import RUNTIMES, load_runtime
from asd_se.video.explainers import check_runtime_explainer, choose_explainer
from asd_se.video.tracks import FaceFinder

log = logging.getLogger(__name__)

DEGRADE_LAG_S = 0.3  # a frame waiting this long before it is worked on: detect less often
DROP_LAG_S = 1.0  # ... this long: drop the frames waiting
RECOVER_S = 5.0  # this long without lag: detect as often as asked again
MOST_SPARSE = 4  # detection is made at most this many times rarer than asked
CATCH_UP = 5  # frames taken at most from what has already arrived before the next decision step
DETECTION_WAIT_S = 0.1  # while nothing has arrived, detections out are waited for this long, their frames moved on


@dataclass(frozen=True)
class LiveSettings:
    """How ``asd-se live`` reads, decides and writes."""

    lookahead: float = setting(0.5, "seconds of future a decision waits for (the latency accepted; 0 allowed)",
                               range=Range(0.0, 10.0))
    context: float = setting(2.0, "seconds of past each decision window keeps", range=Range(0.0, 60.0))
    hop: float = setting(0.04, "decide every this many seconds (fewer forward passes, this much more latency)",
                         range=Range(1 / MODEL_FPS, 5.0))
    open_maps: bool = setting(False, "a streamed encoder's newest maps read open (as a clip ending now) so that the "
                                     "whole lookahead is future to the decision; default: its reach (LR-ASD: 0.36 "
                                     "s) counts against the lookahead and every map read is final")
    realtime: bool = setting(False, "read a file at its own pace, as if it were arriving (default: as fast as it "
                                    "decodes); other sources always come at their own pace")
    stall: float = setting(10.0, "seconds without a frame before the source counts as stalled",
                           range=Range(0.1, 3600.0))
    detect_every: int = setting(5, "run the face detector every K frames and at shot cuts", range=AT_LEAST_ONE)
    detect_workers: int = setting(2, "processes running the face detector (one keeps going while another is "
                                     "recycled)", range=AT_LEAST_ONE)
    min_face: int = setting(12, "ignore faces under this many pixels tall", range=NOT_NEGATIVE)
    explainer: str = setting("auto", "heatmap method (as render's): auto is se where the model has an SE block",
                             ("auto", *EXPLAINERS))
    se: ChannelSelection = ChannelSelection()
    alpha: float = setting(0.45, "heatmap opacity in the MP4 and the page, 0 to hide", range=FRACTION)
    device: str = setting("auto", "auto (the GPU where there is one), cpu, cuda or cuda:N")
    runtime: str = setting("torch", "torch, or onnx (a .onnx from asd-se export onnx, on the CPU)", RUNTIMES)
    crf: int = setting(23, "H.264 quality of the MP4 (lower: better, larger)", range=Range(0, 51))
    preset: str = setting("ultrafast", "x264 speed preset of the MP4", X264_PRESETS)
    audio_stream: int | None = setting(None, "listen to this audio stream of the source (0: its first); default: "
                                             "a file's first one with sound, a stream's first", range=NOT_NEGATIVE)

    def __post_init__(self) -> None:
        check_settings(self)
        check_runtime_explainer(self.runtime, self.explainer)


@dataclass
class LiveResult:
    """How a live run went: frames read, decided and dropped, latency, why it ended."""

    frames: int
    decided: int
    dropped: int
    reason: str
    latency: dict
    seconds: float
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)


class Pace:
    """The degradation policy of a paced source (see the module): ``check(lag)`` says what to do now. Falling
    behind climbs ``LADDER`` one rung at a time (at most one a second): decide every other hop, then detect 2×,
    then 4× less often; after that, frames are dropped. Calm for ``RECOVER_S`` steps back down a rung."""

    LADDER = ((1, 1), (2, 1), (2, 2), (2, MOST_SPARSE))  # (hop ×, detection rarer ×) per rung

    def __init__(self, finder: FaceFinder, decider: LiveDecider, enabled: bool):
        self.finder, self.decider, self.enabled = finder, decider, enabled
        self.asked = finder.detect_every, decider.hop
        self.rung, self.calm_since, self.changed = 0, time.monotonic(), 0.0

    def _climb(self, step: int) -> dict:
        """Move ``step`` rungs; the event's fields."""
        self.rung += step
        hop_times, rarer = self.LADDER[self.rung]
        self.finder.set_detect_every(self.asked[0] * rarer)
        self.decider.hop = self.asked[1] * hop_times
        self.changed = time.monotonic()
        return {"detect_every": self.finder.detect_every, "hop_s": round(self.decider.hop / MODEL_FPS, 3),
                "message": f"deciding every {self.decider.hop / MODEL_FPS:g} s, detecting every "
                           f"{self.finder.detect_every} frames"}

    def check(self, lag: float) -> tuple[str, dict] | None:
        """``("degraded" | "recovered", fields)``, ``("drop", {})`` or None; ``lag``: how long the frame now worked
        on waited."""
        if not self.enabled:
            return None
        now = time.monotonic()
        if lag < 0.05:
            if now - self.calm_since > RECOVER_S and self.rung > 0:
                self.calm_since = now
                return "recovered", self._climb(-1)
            return None
        self.calm_since = now
        if lag > DROP_LAG_S:
            return "drop", {}
        if lag > DEGRADE_LAG_S and now - self.changed > 1.0 and self.rung < len(self.LADDER) - 1:
            return "degraded", self._climb(1)
        return None


def check_live_paths(source: str, checkpoint: Path, jsonl: Path | None, out: Path | None) -> None:
    """Outputs that cannot be written, that would write over an input, or an MP4 that is not ``.mp4``:
    refused before anything is read."""
    if out is not None and out.suffix.lower() != ".mp4":
        raise RenderError(f"{out}: the live output must be an .mp4 file (fragmented MP4)")
    reads = [Path(source)] if source_kind(source) in ("file", "camera") else []
    check_outputs(reads + [Path(checkpoint)], [jsonl, out])


class _Outputs:
    """The annotated MP4 (fragmented, at the first frame's size) and the served page, fed by the emitter."""

    def __init__(self, out: Path | None, server: LiveServer | None, source: LiveSource, settings: LiveSettings):
        self.server, self.size = server, (source.info.width, source.info.height)
        self.writer = None
        if out is not None:
            info = source.info
            self.writer = VideoWriter(out, info.width, info.height, info.fps, audio_rate=info.audio_rate,
                                      audio_channels=info.audio_channels, crf=settings.crf, preset=settings.preset,
                                      time_base=info.time_base, fragmented=True)

    @property
    def draws(self) -> bool:
        return self.writer is not None or self.server is not None

    def audio(self, frame: av.AudioFrame, time_s: float) -> None:
        if self.writer is not None and self.writer.has_audio:
            self.writer.write_audio_frame(frame, time_s)

    def __call__(self, frame: FrameFaces, line: dict, drawings) -> None:
        image = frame.image
        if image is None:
            return
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        if self.writer is not None:
            self.writer.write_frame(image, pts=self.writer.pts(frame.time))
        if self.server is not None and self.server.watched:
            self.server.publish(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes(), line)

    def event(self, line: dict) -> None:
        if self.server is not None:
            self.server.publish(None, line)

    def close(self) -> None:
        """Close the MP4 (the page's server is the run's to close, after it)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _lines(jsonl: Path | None, stream: TextIO | None, held: contextlib.ExitStack) -> tuple[TextIO, str]:
    """Where the JSON lines go and its name for messages: ``jsonl`` (opened now: a journal, each line flushed),
    else ``stream``, else standard output."""
    if jsonl is not None:
        handle = open(jsonl, "w", encoding="utf-8")

        def close(failing, *_) -> None:  # what a failed write left buffered is not tried again
            with contextlib.suppress(OSError) if failing else stream_errors(str(jsonl)):
                handle.close()

        held.push(close)
        return handle, str(jsonl)
    if stream is not None:
        return stream, "the JSON lines' stream"
    return standard_output(), "standard output"


def run_live(source: str, checkpoint: Path, settings: LiveSettings = LiveSettings(), jsonl: Path | None = None,
             out: Path | None = None, serve: int | None = None, stream: TextIO | None = None) -> LiveResult:
    """Run ``asd-se live`` on ``source`` (a path, a URL, ``/dev/videoN`` or ``-``); JSON lines go to ``jsonl``
    (else ``stream``, else stdout). Everything that can refuse — the source, the model, the port, the detector
    processes — is acquired before any output is opened, and a signal meanwhile raises (KeyboardInterrupt,
    ``Terminated``) with nothing written. From the start line on, a signal is a ``StopRequest``: every stage
    (warm-up, reading, deciding) ends within ``POLL_S`` of it, the outputs are closed and the end line says why.
    Raises MediaError for a source that cannot be opened, that stalls or that ends in an error (the outputs
    closed first, the end line saying why) and returns how the run ended otherwise (``reason``: end of stream,
    SIGINT, SIGTERM). Detection runs in spawned
    processes, as in ``render_video``: a calling script guards its entry point (without, it hangs) and keeps
    heavy imports out of its top level (each process imports it again)."""
    started = time.perf_counter()
    check_live_paths(source, checkpoint, jsonl, out)
    with contextlib.ExitStack() as held:
        reader = LiveSource(source, settings.realtime, settings.stall, audio_stream=settings.audio_stream)
        held.callback(reader.close)
        device = resolve_device("cpu" if settings.runtime == "onnx" and settings.device == "auto" else settings.device)
        model, config = load_runtime(checkpoint, device, settings.runtime)
        explainer, se_informative, notes = choose_explainer(model, checkpoint, settings.explainer, settings.se,
                                                            settings.runtime)
        server = LiveServer(serve) if serve is not None else None
        if server is not None:
            held.callback(server.close)
        finder = FaceFinder(FaceDetector(), settings.detect_every, settings.min_face)
        pool = held.enter_context(DetectionPool(finder.detector, settings.detect_workers))
        ready_pool(pool, finder.detector, (reader.info.width, reader.info.height), settings.detect_workers)
        notes = reader.notes + notes
        for note in notes:
            log.warning(note)
        # the outputs, from here on: every resource is in hand
        lines, lines_name = _lines(jsonl, stream, held)
        outputs = _Outputs(out, server, reader, settings)
        held.callback(outputs.close)
        emitter = Emitter(lines, config.model.crop, se_informative, [outputs], settings.alpha, lines_name)
        timer = StageTimer()
        seconds = lambda value: int(round(value * MODEL_FPS))  # noqa: E731
        faces = LiveFaces(finder, config.model.crop, min(seconds(settings.lookahead), crop_future(config.model.crop)))
        audio_ring = AudioRing()
        decider = LiveDecider(model, device, explainer, audio_ring, seconds(settings.lookahead),
                              seconds(settings.context), seconds(settings.hop), timer, settings.open_maps)
        run = _Run(reader, faces, decider, emitter, outputs, pool, audio_ring, timer, settings, StopRequest())
        info = reader.info
        start_line = {"source": source, "kind": reader.kind, "width": info.width, "height": info.height,
                      "fps": round(info.fps, 3), "has_audio": info.audio_rate is not None,
                      "checkpoint": str(checkpoint), "explainer": explainer.name, "crop": config.model.crop,
                      "settings": asdict(settings), "notes": notes}
        if server is not None:
            start_line["serve"] = server.url
            log.info("live page: %s", server.url)
        emitter.event("start", **start_line)
        with run.stop:  # from here a signal is a request to stop: the run ends at its next step
            streaming = time.perf_counter()
            reason, error = run.stream()
        emitter.event("end", reason=reason, **({"message": error} if error else {}), frames=run.frames,
                      decided=emitter.emitted, dropped=run.dropped, latency=emitter.latency.summary(),
                      seconds=round(time.perf_counter() - streaming, 2))
    result = LiveResult(run.frames, emitter.emitted, run.dropped, reason, emitter.latency.summary(),
                        time.perf_counter() - started, timer.report(), notes + reader.decoded.warnings)
    if reason in ("stalled", "error"):  # the outputs are closed, the end line says why; so does the message
        raise (Stalled if reason == "stalled" else MediaError)(error)
    return result


def ready_pool(pool: DetectionPool, detector: FaceDetector, size: tuple[int, int], workers: int) -> None:
    """Have each of the ``workers`` detector processes of ``pool`` answer once for frames of ``size``: they
    have started, so the stream's first detections do not wait for them."""
    blank = [np.zeros((h, w, 3), np.uint8) for w, h in detector.input_sizes(*size)]
    for _ in range(workers):
        pool.submit(-1, blank, size)
    list(pool.drain())


class _Run:
    """The loop of one live run (see the module)."""

    def __init__(self, reader: LiveSource, faces: LiveFaces, decider: LiveDecider, emitter: Emitter,
                 outputs: _Outputs, pool: DetectionPool, audio: AudioRing, timer: StageTimer,
                 settings: LiveSettings, stop: StopRequest):
        self.reader, self.faces, self.decider, self.emitter = reader, faces, decider, emitter
        self.outputs, self.pool, self.audio, self.timer = outputs, pool, audio, timer
        self.pace = Pace(faces.finder, decider, reader.paced)
        self.settings, self.stop = settings, stop
        self.mono = MonoAudio()
        self.convert = FrameConverter()
        self.size: tuple[int, int] | None = None
        self.waiting: deque[tuple[int, float, float, np.ndarray, np.ndarray | None]] = deque()  # to be tracked
        self.detecting: deque[int] = deque()  # frames whose detections are still out
        self.ended: Ended | None = None  # the source's end, met while dropping
        self.frames = self.dropped = self.overflowed = 0
        self.has_audio = reader.info.audio_rate is not None

    def stream(self) -> tuple[str, str | None]:
        """Warm the model up, read and decide until the source ends or a stop is requested, then decide what
        arrived: ``(reason, error message or None)``."""
        try:
            self.decider.warm_up(stopped=self.stop.stopped)
            if self.stop.stopped():
                return self.stop.name, None
            self.reader.start()
            reason, error = self.loop()
        except Stalled as stall:
            reason, error = "stalled", str(stall)
        self.finish()
        return reason, error

    def loop(self) -> tuple[str, str | None]:
        """Frames in arrival order until the source ends or a signal stops it; a decision step after each frame,
        or after up to ``CATCH_UP`` frames where more have already arrived (one step decides them all: a step
        costs about the same for one sample as for several)."""
        caught_up = 0
        while True:
            self._await_detections()
            with self.timer.stage("wait"):
                item = self.reader.next(self.stop.stopped)
            if item is None:
                return self.stop.name, None
            self._overflow()
            if isinstance(item, Ended):
                return self._ended(item)
            if isinstance(item.frame, av.AudioFrame):
                self._audio(item)
                continue
            action = self.pace.check(time.monotonic() - item.arrived)
            if action is not None and action[0] == "drop":
                item = self._drop(item)
            elif action is not None:
                self.emitter.event(action[0], **action[1])
            self._video(item)
            caught_up += 1
            if self.reader.waiting and caught_up < CATCH_UP and self.ended is None:
                continue  # behind: what has arrived is taken first, and one step decides it all
            caught_up = 0
            self._advance()
            if self.ended is not None:
                return self._ended(self.ended)

    def _ended(self, ended: Ended) -> tuple[str, str | None]:
        """How the run ends with the source: an error where it ended before its first picture."""
        if self.frames or ended.reason not in ("end of stream", "error"):
            return ended.reason, ended.error
        cause = f" ({ended.error})" if ended.error else ""
        return "error", f"{self.reader.spec}: the stream ended before its first video frame{cause}"

    def _await_detections(self) -> None:
        """While nothing has arrived, take each detection as it finishes and move its frames on (tracked, cropped,
        decided) instead of leaving them until the next frame arrives; at most ``DETECTION_WAIT_S``."""
        deadline = time.monotonic() + DETECTION_WAIT_S
        while self.detecting and not self.reader.waiting and not self.stop.stopped() and time.monotonic() < deadline:
            with self.timer.stage("wait"):
                done = self.pool.wait(0.005)
            if done:
                self._advance()

    def _overflow(self) -> None:
        """Say so where the source's queue was full and the reader dropped frames (a source much faster than
        real time)."""
        lost = self.reader.overflow - self.overflowed
        if lost:
            self.overflowed, self.dropped = self.reader.overflow, self.dropped + lost
            self.emitter.event("dropped", frames=lost,
                               message=f"{lost} frames dropped: the source sent them faster than they could be queued")


    def _audio(self, item: Arrival) -> None:
        self.mono.add(item.frame, self.reader.decoded.audio_origin)  # sample 0 at the stream's time 0
        self.audio.extend(self.mono.take())
        self.outputs.audio(item.frame, item.time)

    def _drop(self, item: Arrival) -> Arrival:
        """Fell too far behind: drop the video frames waiting (audio is kept), go on from the newest."""
        lag = time.monotonic() - item.arrived
        latest, dropped = item, 0
        for waiting in self.reader.take_waiting():
            if isinstance(waiting, Ended):
                self.ended = waiting  # the loop ends after the newest frame
                break
            if isinstance(waiting.frame, av.AudioFrame):
                self._audio(waiting)
            else:
                latest, dropped = waiting, dropped + 1
        self.dropped += dropped
        self.emitter.event("dropped", frames=dropped, lag_ms=round(lag * 1000),
                           message=f"{dropped} frames dropped to catch up ({lag:.1f} s behind)")
        return latest

    def _video(self, item: Arrival) -> None:
        frame = item.frame
        size = (frame.width, frame.height)
        if self.size is not None and size != self.size:
            self._restart(size)
        self.size = size
        index = self.frames
        self.frames += 1
        finder = self.faces.finder
        with self.timer.stage("convert"):
            gray = self.convert(frame, "gray")
            image = self.convert(frame, "bgr24") if self.outputs.draws else None
            detect = finder.needs_detection(index, self.convert(frame, "gray", *THUMB_SIZE, interpolation="AREA"))
        if detect:
            with self.timer.stage("detect"):
                images = [self.convert(frame, "rgb24", *scaled, interpolation="AREA")
                          for scaled in finder.detector.input_sizes(*size)]
                self.pool.submit(index, images, size)
                self.detecting.append(index)
        self.waiting.append((index, item.time, item.arrived, gray, image))

    def _restart(self, size: tuple[int, int]) -> None:
        """The picture changed size mid-stream: what is waiting is finished, tracks end, detection restarts."""
        self._track(wait=True)
        self.faces.restart()
        self._advance()  # the tracks that ended here are decided and their frames out before the event
        self.emitter.event("resolution", width=size[0], height=size[1],
                           message=f"the picture changed from {self.size[0]}x{self.size[1]} to {size[0]}x{size[1]}: "
                                   f"tracks restart; the MP4 keeps its first size")

    def _own_boxes(self, index: int) -> bool:
        """Whether frame ``index`` is placed by its own detection: the stream's first frame and a shot's, which no
        earlier detection holds boxes for. Every other frame is placed by the detections before it, so no frame
        waits for its own (40-80 ms on 2 busy cores), and a stream gets the same boxes however that timing falls."""
        finder = self.faces.finder
        return bool(finder.detected_frames) and (index == finder.detected_frames[0] or index in finder.cut_frames)

    def _croppable(self, index: int) -> bool:
        """Whether frame ``index`` can be placed now: the detections of every frame before it are in, and its own
        where it is placed by it (``_own_boxes``)."""
        if not self.detecting or index < self.detecting[0]:
            return True
        return index == self.detecting[0] and not self._own_boxes(index)

    def _track(self, wait: bool = False) -> None:
        """Hand finished detections to the tracker in order, and move every frame that can be cut
        (``_croppable``) through the faces (crops) to the emitter."""
        finder = self.faces.finder
        results = self.pool.drain() if wait else self.pool.ready()
        with self.timer.stage("detect"):
            for key, detections in results:
                finder.track(key, detections, self.reader.info.fps)
                self.detecting.popleft()
        while self.waiting and self._croppable(self.waiting[0][0]):
            index, stamp, arrived, gray, image = self.waiting.popleft()
            with self.timer.stage("crop"):
                shown = self.faces.frame(index, stamp, arrived, gray, index + 1 if self._own_boxes(index) else index)
            shown.image = image
            self.emitter.push(shown)

    def _newest(self) -> int:
        """One past the last sample whose picture and sound have both arrived."""
        video = self.faces.next_sample or 0
        if not self.has_audio:
            return video
        return min(video, (self.audio.end - self.decider.model.audio_context[1]) // SAMPLES_PER_FRAME)

    def _advance(self, final: bool = False) -> None:
        self._track(wait=final)
        tracks = list(self.faces.tracks.values())
        if tracks:
            self.decider.step(tracks, self._newest(), final)
        with self.timer.stage("emit"):
            self.emitter.flush()
        for track in self.emitter.release(self.faces.tracks):
            self.decider.drop(track)
        oldest = min([t.crops.start for t in self.faces.tracks.values()] + [self._newest() - self.decider.context])
        heard_from = self.decider.forget_sound_before(oldest)
        self.audio.trim(heard_from * SAMPLES_PER_FRAME - self.decider.model.audio_context[0])

    def finish(self) -> None:
        """The stream ended (or was stopped): decide and emit everything that arrived."""
        self._overflow()
        self.audio.extend(self.mono.finish())
        self._track(wait=True)
        self.faces.close_all()
        self._advance(final=True)
