"""``asd-se render``: the streaming pipeline. Three decodes of the input, nothing per frame on disk:

1. scan: frame times, audio, faces (detection every K frames + IoU tracker + shot cuts) or the given boxes;
2. crops: every track's 25 fps face crops (THE crop) into an unlinked temporary file; then the model scores
   and explains each track window by window (SE maps from the same forward pass);
3. draw: boxes, probabilities and heatmaps onto every frame, encoded with the original audio and timing.

The MP4, its JSON (THE render document), CSV, timeline and RTTM appear together, once everything succeeded; the
review page, a view of the JSON (``asd-se review`` makes it again), is written after them. The input is never
written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from asd_se.core.annotations import read_annotations
from asd_se.core.ava import write_predictions
from asd_se.core.devices import resolve_device
from asd_se.core.errors import RenderError
from asd_se.core.fsio import check_outputs, staged_outputs, write_text_atomic
from asd_se.core.media import DecodedVideo, FrameConverter, choose_audio_stream, demux, probe
from asd_se.core.options import AT_LEAST_ONE, FRACTION, NOT_NEGATIVE, Range, check_settings, setting
from asd_se.core.progress import Progress
from asd_se.core.timing import StageTimer
from asd_se.core.writer import X264_PRESETS, VideoWriter
from asd_se.explain import EXPLAINERS, ChannelSelection
from asd_se.faces.detect import FaceDetector
from asd_se.models.loading import RUNTIMES, load_runtime
from asd_se.render.report import plot_timeline, predictions, write_report
from asd_se.render.scan import SourceScan, scan
from asd_se.render.scores import CropSpool, TrackResult, cut_crops, same_channels_everywhere, score_tracks
from asd_se.render.tracks import annotated_tracks
from asd_se.review.document import RenderDocument, read_render
from asd_se.review.page import write_review
from asd_se.review.segments import SegmentSettings, document_segments, to_rttm
from asd_se.scoring.engine import DURATION
from asd_se.video.draw import FaceDrawing, draw_banner, draw_face, side_panel
from asd_se.video.explainers import choose_explainer, check_runtime_explainer
from asd_se.video.tracks import FaceFinder, RenderTrack

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderSettings:
    """How ``asd-se render`` finds faces, explains and draws."""

    detect_every: int = setting(5, "run the face detector every K frames and at shot cuts", range=AT_LEAST_ONE)
    detect_workers: int = setting(2, "processes running the face detector beside the decoding", range=AT_LEAST_ONE)
    min_face: int = setting(12, "ignore faces under this many pixels tall", range=NOT_NEGATIVE)
    alpha: float = setting(0.45, "heatmap opacity, 0 to hide", range=FRACTION)
    explainer: str = setting("auto", "heatmap method: se (the deciding forward pass, no gradients) or a "
                                     "baseline; auto: se where the model has an SE block, else gradcam",
                             ("auto", *EXPLAINERS))
    durations: tuple[float, ...] = setting((), "score each window as the mean over pieces of these lengths in "
                                               "seconds (Light-ASD's inference averages 1 2 3 4 5 6); "
                                               "default: the whole window at once", range=DURATION)
    se: ChannelSelection = ChannelSelection()
    panel: bool = setting(False, "add a side panel with enlarged crops and heatmaps")
    device: str = setting("auto", "auto (the GPU where there is one), cpu, cuda or cuda:N")
    runtime: str = setting("torch", "torch, or onnx: --checkpoint is an .onnx file written by asd-se export onnx, "
                                    "run by onnxruntime on the CPU (SE maps and eigencam; gradients need torch)",
                           RUNTIMES)
    crf: int = setting(20, "H.264 quality of the output (lower: better, larger)", range=Range(0, 51))
    preset: str = setting("veryfast", "x264 speed preset of the output", X264_PRESETS)
    segments: SegmentSettings = SegmentSettings()
    review: bool = setting(True, "write OUT.html, a review page to open in a browser")
    audio_stream: int | None = setting(None, "score against this audio stream of the input (0: its first); "
                                             "default: the first one with sound", range=NOT_NEGATIVE)

    def __post_init__(self) -> None:
        check_settings(self)
        check_runtime_explainer(self.runtime, self.explainer)


@dataclass
class RenderResult:
    """Where the outputs went and what happened."""

    outputs: dict[str, Path]
    tracks: int
    frames: int
    duration: float
    seconds: float
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)


def output_paths(out: Path) -> dict[str, Path]:
    """``OUT.mp4`` and its companions ``OUT.json``, ``OUT.csv``, ``OUT.timeline.png``, ``OUT.rttm`` (who speaks
    when) and ``OUT.html`` (the review page)."""
    return {"video": out, "json": out.with_suffix(".json"), "csv": out.with_suffix(".csv"),
            "timeline": out.with_name(out.stem + ".timeline.png"), "rttm": out.with_suffix(".rttm"),
            "review": out.with_suffix(".html")}


def check_paths(video: Path, checkpoint: Path, annotations: Path | None, out: Path) -> None:
    """Refuse, before any work, outputs that cannot be written or would write over an input (the video, the
    checkpoint, the annotations)."""
    if out.suffix.lower() != ".mp4":
        raise RenderError(f"{out}: the output must be an .mp4 file")
    if not out.parent.is_dir():
        raise RenderError(f"{out.parent}: output folder does not exist")
    check_outputs([video, checkpoint, annotations], output_paths(out).values())


def _annotation_rows(csv_path: Path, video: Path) -> tuple[list, list[str]]:
    """The CSV rows of this video (by file stem; a CSV of one video is taken whole) and the CSV's problems."""
    rows, problems = read_annotations([csv_path])
    notes = [str(p) for p in problems]
    ids = sorted({r.video_id for r in rows})
    if not rows:
        raise RenderError(f"{csv_path}: no usable annotation rows" + (f" ({notes[0]})" if notes else ""))
    chosen = [r for r in rows if r.video_id == video.stem] or (rows if len(ids) == 1 else [])
    if not chosen:
        raise RenderError(f"{csv_path}: no rows for video_id {video.stem!r} (the CSV has {len(ids)} videos: "
                          f"{', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''})")
    return chosen, notes


def _draw_frames(source: SourceScan, tracks: list[RenderTrack], results: list[TrackResult], path: Path,
                 settings: RenderSettings, crop: str, banner: str | None, timer: StageTimer, progress: bool) -> int:
    """Pass 3: decode again, draw every face on every frame, encode with the audio; returns frames written."""
    panel = max(96, source.height // 3) if settings.panel else 0
    starts = np.array([t.frames[0] for t in tracks], np.int64)
    ends = np.array([t.frames[-1] for t in tracks], np.int64)
    boxes = [t.shown_boxes(crop) for t in tracks]
    decoded, convert = DecodedVideo(), FrameConverter((source.width, source.height))
    index = -1
    with VideoWriter(path, source.width + panel, source.height, source.fps, audio_rate=source.audio_rate,
                   audio_channels=source.audio_channels, crf=settings.crf, preset=settings.preset,
                   time_base=source.time_base) as writer, \
            Progress("drawing", "frame", len(source.frame_times), progress) as bar:
        frames = demux(source.path, with_audio=source.has_audio, result=decoded, audio_stream=source.audio_stream)
        for frame in timer.iterate("decode", frames):
            if isinstance(frame, av.AudioFrame):
                with timer.stage("encode"):
                    writer.write_audio_frame(frame, decoded.audio_time(frame))
                continue
            index += 1
            bar.update()
            frame_time = decoded.frame_time(frame)
            with timer.stage("draw"):
                image = convert(frame, "bgr24")
                gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if panel else None
                faces = []
                for k in np.flatnonzero((starts <= index) & (ends >= index)):
                    track, result = tracks[k], results[k]
                    sample = track.frame_samples[index - track.frames[0]]
                    heat = None if result.maps is None or np.isnan(result.peaks[sample, 0]) else result.maps[sample]
                    faces.append(FaceDrawing(track.boxes[index - track.frames[0]], float(result.probs[sample]),
                                             track.name, heat, crop, boxes[k][index - track.frames[0]]))
                    draw_face(image, faces[-1], settings.alpha)
                if banner:
                    draw_banner(image, banner)
                if panel:
                    image = side_panel(image, gray, faces, settings.alpha, panel)
            with timer.stage("encode"):
                writer.write_frame(image, pts=int(round(frame_time / source.time_base)))
    return index + 1


def render_video(video: Path, checkpoint: Path, out: Path | None = None, annotations: Path | None = None,
                 settings: RenderSettings = RenderSettings(), progress: bool = True) -> RenderResult:
    """Render ``video`` with every face's speaking probability and SE heatmap into ``out`` (default:
    ``VIDEO_STEM.asd.mp4`` beside the input) plus ``.json``, ``.csv`` and ``.timeline.png`` companions.
    Detection runs in spawned processes: a script calling this must guard its entry point
    (``if __name__ == "__main__":``), as with any multiprocessing pool, and is imported again by each of them
    (recycled ones included) — import torch and the like inside its functions, not at its top (1.5 s of CPU each)."""
    started = time.perf_counter()
    video = Path(video)
    out = Path(out) if out is not None else video.with_name(video.stem + ".asd.mp4")
    check_paths(video, Path(checkpoint), annotations, out)
    probe(video)  # a missing, empty, unreadable or video-less input fails here, before the model loads
    audio_stream, notes = choose_audio_stream(video, settings.audio_stream)
    device = resolve_device("cpu" if settings.runtime == "onnx" and settings.device == "auto" else settings.device)
    model, config = load_runtime(checkpoint, device, settings.runtime)
    timer = StageTimer()
    explainer, se_informative, chosen = choose_explainer(model, checkpoint, settings.explainer, settings.se,
                                                         settings.runtime)
    notes += chosen
    rows = None
    if annotations is not None:
        rows, problems = _annotation_rows(Path(annotations), video)
        notes += problems
    finder = None if rows is not None else FaceFinder(FaceDetector(), settings.detect_every, settings.min_face)
    source = scan(video, finder, timer, progress, settings.detect_workers, audio_stream)
    notes += source.warnings
    if rows is not None:
        tracks = annotated_tracks(rows, source.frame_times, source.width, source.height)
    else:
        tracks = finder.tracks(source.frame_times)
        notes += [f"{finder.too_small} detections under {settings.min_face} px ignored"] if finder.too_small else []
        notes += [f"{len(finder.cut_frames)} shot cuts: tracks restart at each"] if finder.cut_frames else []
    banner = None
    if not source.has_audio:
        banner = "NO AUDIO: scores from faces + silence"
        notes.append(f"{video}: has no audio stream; faces were scored against silence and the output has no audio")
    if not tracks:
        banner = "NO FACES FOUND" if banner is None else banner + " | NO FACES FOUND"
        notes.append(f"{video}: no faces found; the output is the input re-encoded with this note")
    for note in notes:
        log.warning(note)
    results: list[TrackResult] = []
    if tracks:
        with CropSpool([len(t.sample_times) for t in tracks]) as spool:
            cut_crops(source, tracks, spool, timer, config.model.crop, progress)
            results = score_tracks(model, tracks, spool, source.audio, device, timer, explainer, settings.durations,
                                   progress)
        fixed = same_channels_everywhere(results)
        if fixed is not None:
            notes.append(f"{checkpoint}: its SE block selected the same {len(fixed)} channels for every face and "
                         f"frame, speaking or not: the SE map shows where those channels fire in each face, not a "
                         f"choice of channels made per decision (README, 'The real SE model'); --explainer "
                         f"gradcam maps this decision's gradient")
            log.warning(notes[-1])
    paths = output_paths(out)
    if not settings.review:
        del paths["review"]
    video_id = rows[0].video_id if rows else video.stem
    with staged_outputs(out.parent) as staging:
        staged = {key: staging / path.name for key, path in paths.items() if key != "review"}
        frames = _draw_frames(source, tracks, results, staged["video"], settings, config.model.crop, banner, timer,
                              progress)
        write_predictions(staged["csv"], predictions(video_id, tracks, results, source))
        plot_timeline(staged["timeline"], tracks, results, source.duration)
        summary = {"input": str(video.resolve()), "video_id": video_id, "output": str(out.resolve()),
                   "checkpoint": str(checkpoint),
                   "mode": "annotations" if rows is not None else "detection",
                   "explainer": explainer.name, "crop": config.model.crop, "frontend": config.model.frontend,
                   "settings": asdict(settings), "width": source.width, "height": source.height,
                   "fps": round(source.fps, 4), "frames": frames, "duration_s": round(source.duration, 3),
                   "has_audio": source.has_audio, "notes": notes, "timings_s": timer.report()}
        write_report(staged["json"], summary, tracks, results, source, config.model.crop, se_informative)
        with timer.stage("review"):
            document = read_render(staged["json"])  # read once: the RTTM now, the page once it is in place
            write_text_atomic(staged["rttm"], to_rttm(document_segments(document, settings.segments), video_id))
    if settings.review:  # after the others are in place (the page links them); all or none still holds
        try:
            with timer.stage("review"):
                notes += write_review(RenderDocument(paths["json"], document.data, document.missing),
                                      paths["review"], settings.segments)
        except BaseException:
            for path in paths.values():
                path.unlink(missing_ok=True)
            raise
    return RenderResult(paths, len(tracks), frames, source.duration, time.perf_counter() - started,
                        timer.report(), notes)
