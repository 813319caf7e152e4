#!/usr/bin/env python
"""Models' mAP on a split of an ``asd-se talkset`` store, overall and per kind of negative, with 95% bootstrap
intervals (videos resampled). Prints JSON. The baseline a model trained on real faces must beat.

    asd-se talkset CLIPS --out SET && asd-se prep --dataset talkset --root SET --out STORE --crop lightasd
    python scripts/bench_talkset.py --data STORE --categories SET/categories/val.csv [--features DIR]
    python scripts/bench_talkset.py ... --features DIR --lookahead 0 0.5 2   # decided as `asd-se live` does

Every model after the first is also compared with the first on the same rows (``minus FIRST``: the mAP
difference with a paired interval, each draw of the videos scoring both), e.g. a fine-tune with and without SE;
with ``--lookahead``, its live decisions also with the first model's at the same lookahead.
With ``--versus K`` the first K models' mean mAP is also compared with the others' (e.g. 3 seeds with SE against
3 without), every draw scoring all of them.

"whose voice": on composites (2-3 faces moving their lips, one voice), the share of the voice's speech frames
where the voice's owner has the highest probability of the faces on screen (chance: 1/2 or 1/3).
"overlapping voices": on frames where two or more faces speak at once (``--scenes``' overlapping turns), the share
where every speaking face scores above every silent one. "speech boundaries": the median distance (ms) from each
start or end of a face's speech to the nearest change of its decision at 0.5 (at most 1 s).
With ``--scenes`` in the set, every layout is a category ("category: scene-panel", ...): the multi-domain
validation, each slice with its interval; "face size: small" is the faces under 64 px.

"negatives vs all positives: KIND" ranks every speaking face-frame against the not-speaking face-frames of one
kind (own: the silences of a face's own clip; other-voice; shifted; composite-voice: the kept voice's silences;
composite-other: faces beside the speaker, lips moving to another's voice).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def whose_voice(predictions: list, categories: dict, kind: str = "composite") -> dict:
    """On the frames of videos of ``kind`` (composites, or multi-face scenes) where one face of several speaks:
    how often the speaking face scores highest (a tie for the highest counts 1/k to the owner among k tied
    faces), and chance."""
    frames = defaultdict(list)
    for p in predictions:
        if categories.get((p.video_id, p.entity_id), "").startswith(kind):
            frames[(p.video_id, p.timestamp)].append(p)
    hits, chance, ties = [], [], 0
    for rows in frames.values():
        speaking = [p for p in rows if p.label == "SPEAKING_AUDIBLE"]
        if len(speaking) == 1 and len(rows) > 1:
            best = max(p.score for p in rows)
            tied = [p for p in rows if p.score == best]
            hits.append((speaking[0] in tied) / len(tied))
            chance.append(1 / len(rows))
            ties += len(tied) > 1
    return {"speech_frames": len(hits), "owner_highest": round(sum(hits) / len(hits), 4) if hits else None,
            "chance": round(sum(chance) / len(chance), 4) if chance else None, "frames_with_a_tie": ties}


def _frames(predictions: list) -> dict:
    """``(video_id, timestamp)`` -> the predictions of the faces on that frame."""
    frames = defaultdict(list)
    for p in predictions:
        frames[(p.video_id, p.timestamp)].append(p)
    return frames


def overlaps(predictions: list) -> dict:
    """On frames where two or more faces speak at once (multi-face scenes' overlapping turns): the share where
    every speaking face scores above every silent one on screen (where none is silent: above 0.5)."""
    hits = []
    for rows in _frames(predictions).values():
        speaking = [p.score for p in rows if p.label == "SPEAKING_AUDIBLE"]
        silent = [p.score for p in rows if p.label != "SPEAKING_AUDIBLE"]
        if len(speaking) >= 2:
            hits.append(min(speaking) > (max(silent) if silent else 0.5))
    return {"overlap_frames": len(hits), "all_speakers_above_every_silent": round(sum(hits) / len(hits), 4)
            if hits else None}


def boundaries(predictions: list, fps: float = 25.0, reach_s: float = 1.0) -> dict:
    """Onset and offset error (ms): for each change of a face's label (speech starting or ending, a second or
    more from the track's ends), the distance to the nearest frame where its decision (p >= 0.5) changes the
    same way, within ``reach_s`` (farther or none: ``reach_s``). Medians, and how many changes were measured."""
    tracks = defaultdict(list)
    for p in predictions:
        tracks[(p.video_id, p.entity_id)].append(p)
    errors = {"onset": [], "offset": []}
    reach = int(round(reach_s * fps))
    for rows in tracks.values():
        rows.sort(key=lambda p: float(p.timestamp))
        truth = [p.label == "SPEAKING_AUDIBLE" for p in rows]
        called = [p.score >= 0.5 for p in rows]
        for kind, rising in (("onset", True), ("offset", False)):
            changes = [i for i in range(1, len(rows)) if truth[i] == rising and truth[i - 1] != rising]
            decided = [i for i in range(1, len(rows)) if called[i] == rising and called[i - 1] != rising]
            for i in changes:
                if reach <= i <= len(rows) - reach:
                    nearest = min((abs(i - j) for j in decided), default=reach)
                    errors[kind].append(min(nearest, reach) * 1000 / fps)
    return {f"median_{kind}_error_ms": round(float(np.median(values)), 1) if values else None
            for kind, values in errors.items()} | {f"{kind}s": len(values) for kind, values in errors.items()}


def false_positives(predictions: list, categories: dict) -> dict:
    """Per kind: the share of its not-speaking face-frames scored p >= 0.5 (called speaking)."""
    called, total = defaultdict(int), defaultdict(int)
    for p in predictions:
        kind = categories.get((p.video_id, p.entity_id), categories.get(p.video_id))
        if kind is not None and p.label != "SPEAKING_AUDIBLE":
            total[kind] += 1
            called[kind] += p.score >= 0.5
    return {kind: round(called[kind] / total[kind], 4) for kind in sorted(total)}


def report(predictions: list, categories: dict, widths: dict, bootstrap: int) -> dict:
    """mAP overall, per category and per kind of negative (intervals), whose voice, false positives."""
    from asd_se.training.evaluate import summarise

    summary = summarise(predictions, categories, widths, bootstrap)
    return {"rows": summary.rows, "positives": summary.positives, "whose_voice": whose_voice(predictions, categories),
            "whose_voice_in_scenes": whose_voice(predictions, categories, "scene"),
            "overlapping_voices": overlaps(predictions), "speech_boundaries": boundaries(predictions),
            "false_positive_rate_at_0.5": false_positives(predictions, categories),
            "groups": {f"{g.group}: {g.name}" if g.group != "all" else "all": {
                "map": None if g.map is None else round(g.map, 2),
                "interval": None if g.low is None else [round(g.low, 2), round(g.high, 2)], "rows": g.rows,
                "positives": g.positives}
                for g in summary.groups if g.group in ("all", "category", "negatives vs all positives", "face size")}}


def slice_maps(result: dict) -> dict[str, list[float]]:
    """A model's ``report`` as the validation table's cells: slice -> ``[mAP, low, high]`` (all; each category;
    each face size)."""
    cells = {}
    for key, group in result["groups"].items():
        name = "all" if key == "all" else key.split(": ", 1)[1] if key.split(": ")[0] in ("category", "face size") \
            else None
        if name is not None and group["map"] is not None and group["interval"] is not None:
            cells[name] = [group["map"], *group["interval"]]
    return cells


def decision_measures(result: dict) -> dict[str, float]:
    """A model's ``report`` as the validation table's decision measures (shares 0-1, errors in ms)."""
    rates = result["false_positive_rate_at_0.5"]
    return {"whose voice (composites)": result["whose_voice"]["owner_highest"],
            "whose voice (scenes)": result["whose_voice_in_scenes"]["owner_highest"],
            "overlap: all speakers above every silent": result["overlapping_voices"]["all_speakers_above_every_silent"],
            "another's voice called speaking": rates.get("other-voice"),
            "own silences called speaking": rates.get("own"),
            "median onset error (ms)": result["speech_boundaries"]["median_onset_error_ms"],
            "median offset error (ms)": result["speech_boundaries"]["median_offset_error_ms"]}


def write_table(path: Path, conditions: str, models: dict[str, dict]) -> None:
    """Merge the models' slices and decision measures into the validation table at ``path`` (``asd-se models``
    prints the shipped one), keeping the models measured before under the same conditions."""
    from asd_se.core.fsio import write_json_atomic

    table = json.loads(path.read_text()) if path.is_file() else {}
    if table.get("conditions") != conditions:
        table = {"conditions": conditions, "models": {}}
    table["models"].update({name: slice_maps(result) for name, result in models.items()})
    table.setdefault("measures", {}).update({name: decision_measures(result) for name, result in models.items()})
    found = {name for cells in table["models"].values() for name in cells}
    table["slices"] = ["all", *sorted(found - {"all"}, key=lambda n: (n.startswith("small") or n.startswith(
        ("medium", "large")), n))]
    write_json_atomic(path, table)


def main() -> None:
    from asd_se.core.devices import resolve_device
    from asd_se.core.media import MODEL_FPS
    from asd_se.models.loading import load_model
    from asd_se.models.streaming import chain_layers
    from asd_se.scoring.engine import live_windows
    from asd_se.training.breakdowns import map_difference, mean_map_difference
    from asd_se.training.evaluate import face_widths, predict_split, read_categories
    from asd_se.training.features import load_features, predict_features
    from data_prep.store import TrackStore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="track store (prepared with --crop lightasd)")
    parser.add_argument("--categories", type=Path, required=True, help="SET/categories/<split>.csv")
    parser.add_argument("--split", default="val")
    parser.add_argument("--models", nargs="+", default=["lightasd-talkset", "lightasd-ava", "lrasd-talkset",
                                                        "lrasd-ava"], help="shipped model names or checkpoints")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--features", type=Path, metavar="DIR",
                        help="score through the frozen encoders' features kept here (computed where missing; the "
                             "same probabilities as the scoring engine's for tracks up to 1,000 frames)")
    parser.add_argument("--lookahead", type=float, nargs="+", default=[], metavar="S",
                        help="with --features: also decide each frame as `asd-se live` does, with S seconds of "
                             "future (less a streamed encoder's reach) and --context before it, the encoders' "
                             "maps final (the back end's share of live's loss), against the whole-track "
                             "decisions with a paired interval")
    parser.add_argument("--context", type=float, default=2.0, metavar="S", help="live's past context (default 2)")
    parser.add_argument("--versus", type=int, metavar="K",
                        help="also the first K models' mean mAP minus the other models' mean, paired")
    parser.add_argument("--table", type=Path, metavar="JSON",
                        help="merge each model's mAP per slice into this validation table (asd-se models prints "
                             "asd_se/weights/validation.json)")
    parser.add_argument("--conditions", default="", help="with --table: what was measured, in words")
    args = parser.parse_args()
    if args.versus is not None and not 0 < args.versus < len(args.models):
        parser.error(f"--versus K needs 0 < K < the number of models ({len(args.models)})")
    if args.lookahead and not args.features:
        parser.error("--lookahead decides from the frozen encoders' features: give --features DIR")
    store, categories = TrackStore.open(args.data), read_categories(args.categories)
    widths = face_widths(store, args.split)
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch CPU", "split": args.split,
               "models": {}}
    device = resolve_device("cpu")
    every: list[list] = []  # each model's predictions: the first's are paired with each later one's, and --versus
    first_live: dict[float, list] = {}  # the first model's live decisions per lookahead, paired with the later ones'
    for name in args.models:
        started = time.perf_counter()
        model, config = load_model(name, device)
        store.require_crop(config.model.crop, name)
        features = None
        if args.features:
            features = load_features(model, store, store.tracks(args.split), args.features, device)
            predictions = predict_features(model, features)
        else:
            predictions = predict_split(model, store, args.split, device)
        result = results["models"][name] = report(predictions, categories, widths, args.bootstrap)
        every.append(predictions)
        if len(every) > 1:
            difference = map_difference(predictions, every[0], args.bootstrap)
            result[f"minus {args.models[0]}"] = {"map": difference.map, "interval": [difference.low, difference.high]}
        # live's window ends at the last final map of a streamed encoder: its reach counts against the lookahead
        reach = model.visual.temporal_radius if chain_layers(model.visual) is not None else 0
        for lookahead in args.lookahead:
            context, future = round(args.context * MODEL_FPS), max(0, round(lookahead * MODEL_FPS) - reach)
            live = predict_features(model, features, lambda frames: live_windows(frames, context, future))
            difference = map_difference(live, predictions, args.bootstrap)
            result[f"live, lookahead {lookahead:g} s"] = {
                **report(live, categories, widths, args.bootstrap),
                "minus whole tracks": {"map": difference.map, "interval": [difference.low, difference.high]}}
            if lookahead in first_live:
                versus = map_difference(live, first_live[lookahead], args.bootstrap)
                result[f"live, lookahead {lookahead:g} s"][f"minus {args.models[0]}'s live"] = {
                    "map": versus.map, "interval": [versus.low, versus.high]}
            first_live.setdefault(lookahead, live)
        result["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps({name: result["groups"].get("all")}), flush=True)
    if args.versus is not None:
        difference = mean_map_difference(every[:args.versus], every[args.versus:], args.bootstrap)
        results["first models minus the others, mean mAP"] = {
            "first": args.models[:args.versus], "others": args.models[args.versus:], "map": difference.map,
            "interval": [difference.low, difference.high]}
    if args.table is not None:
        write_table(args.table, args.conditions or f"{args.split} split of {args.data.name}, "
                    f"{args.bootstrap} draws of the videos", results["models"])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
