"""What ``asd-se explain-eval`` writes: ``explain_eval.json`` and ``.md`` (method × metric, with counts; the
sanity checks), ``randomisation.png`` (similarity to the trained model's maps against randomisation depth),
``se_distribution.png`` (the SE values the model produces: the paper's Figure 3 analogue) and ``grid.png``
(sample faces, then each method's heatmap: the Figure 5 analogue)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from asd_se.core.figures import new_figure, save_figure
from asd_se.core.fsio import atomic_path, write_json_atomic, write_text_atomic
from asd_se.explain.se_map import Z_TOP_10, ChannelSelection, paper_threshold, select_channels
from asd_se.explain_eval.evaluation import ExplainEvalResult, GridSample

RANDOMISATION_PASS = 0.3  # rank correlation a map must fall below, for every seed, once the model is random
NO_MOUTH_BOXES = ("NO MOUTH BOXES: pointing game and mouth energy were not measured (none given with --mouth-boxes, "
                  "and no mouth_boxes/<split>.csv beside the store's annotation folders)")
COLUMNS = (("pointing_speaking", "pointing (speaking) ↑", "n_pointing_speaking"),
           ("pointing_tolerant_speaking", "pointing ±15 px (speaking) ↑", None),
           ("pointing_all", "pointing (all)", "n_pointing_all"),
           ("energy_speaking", "relevance mass (speaking) ↑", None),
           ("rank_speaking", "relevance rank (speaking) ↑", None),
           ("deletion_auc", "deletion AUC ↓", "n_speaking_frames"),
           ("insertion_auc", "insertion AUC ↑", None), ("average_drop", "Avg Drop % ↓", None),
           ("increase_in_confidence", "Increase % ↑", None), ("total_ms_per_frame", "ms/frame", None),
           ("explain_ms_per_frame", "ms/frame beyond the forward", None))


def _cell(value: float | None, count: int | None) -> str:
    text = "n/a" if value is None else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} ({count})" if count is not None else text


def goal_checks(methods: dict) -> list[str]:
    """The issue's goals, each with the figures behind it (only where SE and Grad-CAM were both run)."""
    se, grad = methods.get("se"), methods.get("gradcam")
    if not se or not grad:
        return []
    lines = []
    if se["pointing_speaking"] is not None and grad["pointing_speaking"] is not None:
        ok = se["pointing_speaking"] >= 0.9 and se["pointing_speaking"] >= grad["pointing_speaking"]
        lines.append(f"- SE pointing game on speaking frames ≥ 0.9 and ≥ Grad-CAM: {se['pointing_speaking']:.3f} "
                     f"vs {grad['pointing_speaking']:.3f} — {'met' if ok else 'NOT met'}")
    if se["deletion_auc"] is not None and grad["deletion_auc"] is not None:
        ok = se["deletion_auc"] <= grad["deletion_auc"]
        lines.append(f"- SE deletion AUC no worse than Grad-CAM's: {se['deletion_auc']:.3f} vs "
                     f"{grad['deletion_auc']:.3f} — {'met' if ok else 'NOT met'}")
    centre = methods.get("centre")
    if centre and se["pointing_speaking"] is not None and centre["pointing_speaking"] is not None:
        ok = se["pointing_speaking"] > centre["pointing_speaking"]
        lines.append(f"- SE strict pointing above the crop-centre baseline's: {se['pointing_speaking']:.3f} vs "
                     f"{centre['pointing_speaking']:.3f} — {'met' if ok else 'NOT met'}")
    speedup = grad["total_ms_per_frame"] / max(se["total_ms_per_frame"], 1e-9)
    lines.append(f"- SE at least 5× faster per frame than Grad-CAM: {speedup:.1f}× — "
                 f"{'met' if speedup >= 5 else 'NOT met'}")
    return lines


def markdown(results: dict) -> str:
    methods = results["methods"]
    header = "| method | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [f"# Explanations measured ({results['config']['split']} split: {results['frames']} frames, "
             f"{results['windows']} windows of ≤ {results['config']['window']}, {results['tracks']} tracks)", "",
             *([f"**{NO_MOUTH_BOXES}**", ""] if not results.get("mouth_boxes") else
               [f"Mouth boxes: {', '.join(results['mouth_boxes'])}", ""]),
             header, "|" + "---|" * (len(COLUMNS) + 1)]
    for name, values in methods.items():
        lines.append(f"| {name} | " + " | ".join(_cell(values[key], values[count] if count else None)
                                                 for key, _, count in COLUMNS) + " |")
    lines += ["", "Counts in brackets: frames behind the figure. Pointing, relevance mass and relevance rank use "
              "the mouth box of each annotated frame; ±15 px is the standard pointing game's tolerance (Zhang et "
              "al.): 15 pixels of the original frame, scaled per frame by the crop's pixels per original pixel. "
              f"Deletion/insertion (blurred-crop baseline, {results['config']['steps']} steps), Average Drop and "
              "Increase use the speaking frames.", ""]
    checks = goal_checks(methods)
    return "\n".join(lines + sanity_lines(results) + channel_lines(results.get("se_channels") or {}) +
                     (["## Goals", *checks, ""] if checks else []))


def channel_lines(usage: dict) -> list[str]:
    """Which channels the SE vector selected on speaking and silent frames, as Markdown."""
    if not usage:
        return []
    lines = ["## SE channels selected", "", "| frames | count | channels per frame | most often selected "
             "(channel: share of frames) |", "|---|---|---|---|"]
    for name in ("speaking", "silent"):
        if name in usage:
            row = usage[name]
            top = ", ".join(f"{channel}: {share:.2f}" for channel, share in row["most_selected"])
            lines.append(f"| {name} | {row['frames']} | {row['channels_per_frame']:.1f} | {top} |")
    if "overlap" in usage:
        lines.append(f"\nOverlap (Jaccard) of the channels selected on at least half of each class's frames: "
                     f"{usage['overlap']:.2f} (1: the same channels whatever the decision).")
    return lines + [""]


def sanity_lines(results: dict) -> list[str]:
    """The randomisation cascade (Spearman ρ / SSIM with the trained model's maps, per stage re-initialised)
    and the overlapping-window consistency, as Markdown."""
    cascade = results.get("randomisation_cascade") or []
    if not cascade:
        return []
    names = list(cascade[0]["spearman"])
    lines = ["## Sanity: cascading randomisation", "",
             "The model re-initialised from the output down, one stage more per row; each cell: Spearman rank "
             "correlation / SSIM of the method's maps with the trained model's (1 = unchanged). A map that stays "
             "similar once the visual encoder is random explains the input, not the model.", "",
             "| re-initialised down to | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {step['stage']} | " + " | ".join(f"{step['spearman'][n]:.2f} / {step['ssim'][n]:.2f}"
                                                    for n in names) + " |" for step in cascade]
    last, seeds = cascade[-1]["spearman"], cascade[-1].get("spearman_per_seed", {})

    def verdict(name: str) -> str:
        each = seeds.get(name) or [last[name]]
        passed = max(each) < RANDOMISATION_PASS
        return f"{name} {'yes' if passed else 'NO'} (mean {last[name]:.2f}; per seed " + \
            ", ".join(f"{v:.2f}" for v in each) + ")"

    lines += ["", f"Passes (ρ < {RANDOMISATION_PASS} for every seed with the whole model random): " +
              ", ".join(verdict(n) for n in names), ""]
    consistency = results.get("consistency") or {}
    if consistency:
        lines += ["## Consistency", "", "The same frame explained from two windows half a window apart: Pearson "
                  "correlation of its two maps (1 = identical).", "",
                  "| " + " | ".join(consistency) + " |", "|" + "---|" * len(consistency),
                  "| " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in consistency.values()) + " |", ""]
    return lines


def plot_cascade(path: Path, cascade: list[dict]) -> None:
    """Spearman ρ and SSIM of each method's maps with the trained model's, against the randomisation depth."""
    figure = new_figure(11, 3.8)
    stages = [step["stage"] for step in cascade]
    for axis, key, title in zip(figure.subplots(1, 2), ("spearman", "ssim"), ("Spearman rank correlation", "SSIM")):
        for name in cascade[0][key]:
            axis.plot(range(len(stages)), [step[key][name] for step in cascade], marker="o", label=name)
        axis.axhline(RANDOMISATION_PASS if key == "spearman" else 0, color="grey", linestyle=":", linewidth=1)
        axis.set_xticks(range(len(stages)), stages, rotation=40, ha="right", fontsize="small")
        axis.set_title(f"{title} with the trained model's maps")
        axis.set_xlabel("re-initialised down to")
        axis.legend(fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)


def plot_se_distribution(path: Path, se_values: list[np.ndarray], selection: ChannelSelection) -> None:
    """Histogram of every SE value with the paper's threshold, and the sorted SE profile (median, 10-90% band)
    with the number of channels ``selection`` (the maps' own rule, floor included) picks."""
    vectors = np.concatenate([v.reshape(-1, v.shape[-1]) for v in se_values])  # (N, C)
    weights = torch.from_numpy(vectors).float()
    thresholds = paper_threshold(weights)[:, 0].numpy()
    figure = new_figure(10, 3.5)
    histogram, profile = figure.subplots(1, 2)
    histogram.hist(vectors.reshape(-1), bins=60, color="tab:blue")
    histogram.axvline(float(np.median(thresholds)), color="tab:red", linestyle="--",
                      label=f"median threshold mean+{Z_TOP_10}·std")
    histogram.set_xlabel("SE value")
    histogram.set_ylabel("count (channels × clips)")
    histogram.legend(fontsize="small")
    ordered = -np.sort(-vectors, axis=1)
    ranks = np.arange(1, vectors.shape[1] + 1)
    profile.fill_between(ranks, np.percentile(ordered, 10, axis=0), np.percentile(ordered, 90, axis=0), alpha=0.3)
    profile.plot(ranks, np.median(ordered, axis=0), label="median over clips")
    selected = float(select_channels(weights, selection).sum(dim=1).float().mean())
    profile.axvline(selected, color="tab:red", linestyle="--", label=f"channels selected: {selected:.1f} on average")
    profile.set_xlabel("channel rank by SE value")
    profile.set_ylabel("SE value")
    profile.legend(fontsize="small")
    save_figure(figure, path)


def grid_image(samples: list[GridSample], methods: list[str], cell: int = 160) -> np.ndarray:
    """Rows: faces (speaking first); columns: the crop, then each method's heatmap over it. BGR uint8."""
    samples = sorted(samples, key=lambda s: not s.speaking)
    header = 28
    image = np.full((header + cell * len(samples), cell * (1 + len(methods)), 3), 255, np.uint8)
    for column, title in enumerate(["crop", *methods]):
        cv2.putText(image, title, (column * cell + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for row, sample in enumerate(samples):
        face = cv2.cvtColor(cv2.resize(sample.crop, (cell, cell)), cv2.COLOR_GRAY2BGR)
        tiles = [face.copy()]
        for name in methods:
            heat = cv2.resize(sample.heat.get(name, np.zeros((2, 2), np.float32)), (cell, cell))
            colours = cv2.applyColorMap(np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
            tiles.append(cv2.addWeighted(colours, 0.5, face, 0.5, 0.0))
        for tile in tiles:
            if sample.mouth is not None:
                x1, y1, x2, y2 = (int(round(v * cell / sample.crop.shape[0])) for v in sample.mouth)
                cv2.rectangle(tile, (x1, y1), (x2, y2), (255, 255, 255), 1)
        label = "speaking" if sample.speaking else "silent"
        cv2.putText(tiles[0], label, (4, cell - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 200, 0) if sample.speaking else (0, 0, 255), 1, cv2.LINE_AA)
        image[header + row * cell:header + (row + 1) * cell] = np.concatenate(tiles, axis=1)
    return image


def report_paths(out_dir: Path) -> dict[str, Path]:
    """Every file ``write_explain_report`` may write into ``out_dir``."""
    return {"json": out_dir / "explain_eval.json", "markdown": out_dir / "explain_eval.md",
            "se_distribution": out_dir / "se_distribution.png", "grid": out_dir / "grid.png",
            "randomisation": out_dir / "randomisation.png"}


def write_explain_report(out_dir: Path, result: ExplainEvalResult) -> dict[str, Path]:
    """All outputs into ``out_dir`` (each written atomically); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = report_paths(out_dir)
    summary = result.to_json()
    write_json_atomic(paths["json"], summary)
    write_text_atomic(paths["markdown"], markdown(summary))
    if result.se_values:
        plot_se_distribution(paths["se_distribution"], result.se_values, result.config.se)
    else:
        del paths["se_distribution"]
    if summary["randomisation_cascade"]:
        plot_cascade(paths["randomisation"], summary["randomisation_cascade"])
    else:
        del paths["randomisation"]
    with atomic_path(paths["grid"]) as tmp:
        cv2.imwrite(str(tmp), grid_image(result.grid, list(result.methods)))
    return paths
