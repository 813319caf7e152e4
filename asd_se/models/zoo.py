"""The models asd-se ships: published weights inside the package (``asd_se/weights/``), usable by name wherever a
checkpoint is asked for (``--checkpoint lightasd-talkset``). Nothing is downloaded: a name is turned into a
checkpoint in memory from the file in the package, the same way ``asd-se import`` writes one. A model asd-se
fine-tuned ships as the published file plus the tensors that training changed (``asd_se/weights/asd-se/``,
written by ``scripts/ship_model.py``), with its config, data and figures recorded in that file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from asd_se.models.lightasd_weights import LIGHTASD
from asd_se.models.lrasd_weights import LRASD
from asd_se.models.published import Family, published_payload

WEIGHTS_FOLDER = "weights"  # inside the asd_se package
FAMILIES = {"lightasd": LIGHTASD, "lrasd": LRASD}  # `asd-se import KIND`


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: what it is, where its weights come from, what was measured on it."""

    name: str
    family: Family
    weights: str  # path inside WEIGHTS_FOLDER
    se: bool  # an SE block inserted at its identity start (outputs unchanged; its map is the channel mean)
    trained_on: str
    licence: str
    source: str
    figures: str
    trained: str = ""  # path inside WEIGHTS_FOLDER of the parts asd-se trained on top of ``weights``

    @property
    def path(self) -> Path:
        """The weight file inside the installed package."""
        return _packaged(self.weights)

    @property
    def trained_path(self) -> Path | None:
        return _packaged(self.trained) if self.trained else None

    def sha256(self) -> str:
        """Of the published file, and of the trained parts where the model has them."""
        files = [self.path] + ([self.trained_path] if self.trained else [])
        return " + ".join(hashlib.sha256(path.read_bytes()).hexdigest() for path in files)


def _packaged(relative: str) -> Path:
    return Path(str(resources.files("asd_se").joinpath(WEIGHTS_FOLDER, relative)))


_LIGHTASD = "https://github.com/Junhua-Liao/Light-ASD (weight/)"
_LRASD = "https://github.com/Junhua-Liao/LR-ASD (weight/)"
_PARITY = "scores = the reference code's within 1e-6 on real tracks (tests/test_lightasd.py)"
_LR_PARITY = ("scores = the reference code's on real tracks: identical whole, within 1e-3 averaged over durations "
              "(tests/test_lrasd.py)")
_TALKSET = "TalkSet (VoxCeleb2 + LRS3), from the AVA model"
_AVA = "AVA-ActiveSpeaker train (authors: 94.1 mAP on AVA val)"
_LR_TALKSET = "TalkSet (VoxCeleb2 + LRS3), from the AVA model (authors: Columbia F1 96.4)"
_LR_AVA = "AVA-ActiveSpeaker train (authors: 94.5 mAP on AVA val)"
_UNTRAINED = "SE block untrained (identity start): the map is the channel mean"
_REAL = ("real talking faces (asd-se talkset on VASP, 4 held-out people, docs/benchmarks.md): mAP {map} "
         "(own silences {own}), a face under another's voice called speaking on {fp} of its frames")
_REAL_LT = _REAL.format(map="31.7 [25.1, 39.7]", own="99.0", fp="99.7%")
_REAL_LA = _REAL.format(map="37.9 [29.6, 48.9]", own="99.3", fp="77.9%")
_REAL_RT = _REAL.format(map="33.1 [26.5, 42.5]", own="98.3", fp="98.1%")
_REAL_RA = _REAL.format(map="44.3 [34.2, 56.1]", own="99.6", fp="86.0%")


def _render(speed: str) -> str:
    return f"render {speed} real time on a 176x144 clip, 2 cores"


def _pair(name: str, family: Family, weights: str, trained_on: str, source: str, parity: str, real: str,
          render: str = "", render_se: str = "") -> tuple[ShippedModel, ShippedModel]:
    """A published weight file shipped twice: as published (Grad-CAM maps) and as ``<name>-se`` (an SE block
    inserted at its identity start), with the figures measured on each."""
    def figures(*parts: str) -> str:
        return "; ".join(part for part in parts if part)

    plain = figures(parity, "Grad-CAM maps" if render else "", _render(render) if render else "", real)
    with_se = figures(parity, _UNTRAINED, _render(render_se) if render_se else "", real)
    return (ShippedModel(name, family, weights, False, trained_on, "MIT", source, plain),
            ShippedModel(f"{name}-se", family, weights, True, trained_on, "MIT", source, with_se))


_PUBLISHED = tuple(model for pair in (
    _pair("lightasd-talkset", LIGHTASD, "light-asd/finetuning_TalkSet.model", _TALKSET, _LIGHTASD, _PARITY, _REAL_LT,
          "1.7-1.9x", "2.3-3.1x"),
    _pair("lightasd-ava", LIGHTASD, "light-asd/pretrain_AVA_CVPR.model", _AVA, _LIGHTASD, _PARITY, _REAL_LA),
    _pair("lrasd-talkset", LRASD, "lr-asd/finetuning_TalkSet.model", _LR_TALKSET, _LRASD, _LR_PARITY, _REAL_RT,
          "1.5-2.1x", "2.4-3.6x"),
    _pair("lrasd-ava", LRASD, "lr-asd/pretrain_AVA.model", _LR_AVA, _LRASD, _LR_PARITY, _REAL_RA),
) for model in pair)
_VASP = ("real talking faces: VASP train/ (16 people, 1,641 asd-se talkset videos), from lrasd-talkset-se with "
         "frozen encoders (the SE block, fusion, back end and heads trained; 24 epochs)")
_VASP_FIGURES = ("4 held-out people (VASP val, 49,287 face-frames, docs/benchmarks.md): mAP 77.5 [71.7, 82.7] "
                 "(lrasd-talkset: 34.0 [30.2, 39.7]); a face under another's voice called speaking on 8.1% of its "
                 "frames (98.7%); the voice's owner highest on 0.76 of composite speech frames (0.43; chance 0.41); "
                 "SE map strict pointing on mouths 0.00 (crop centre 0.01, Grad-CAM 0.26): the trained SE block "
                 "selects the same 17 channels for every input")
_VASP_FULL = ("real talking faces: VASP train/ as above, from lrasd-talkset-se: 24 epochs on frozen encoders with "
              "train.se_sparsity 0.1, then one pass with nothing frozen (the encoders learn too) over a random half "
              "of the train tracks (204,956 face-frames)")
_VASP_FULL_FIGURES = ("4 held-out people (as above): mAP 78.7 [73.5, 83.1]; a face under another's voice called "
                      "speaking on 2.1% of its frames; the voice's owner highest on 0.86 of composite speech frames; "
                      "SE map strict pointing on mouths 0.21 (se_contrast 0.32, Grad-CAM 0.30, crop centre 0.01)")
_AVA_VASP = ("real talking faces and multi-face scenes: asd-se talkset --scenes 0.5 on VASP train/ (16 people; "
             "split screens, 2x2 panels, insets, groups of small faces; one voice, two at once, none; babble, music, "
             "AAC), from lrasd-ava-se with frozen encoders (the SE block, fusion, back end and heads trained, "
             "train.se_sparsity 0.1, another's voice on 30% of windows; best val epoch 13 of 24)")
_AVA_VASP_FIGURES = ("4 held-out people, multi-domain validation (asd-se models' table below): mAP 77.6 [72.0, 82.1] "
                     "(lrasd-ava 46.4, lrasd-vasp-se-full 71.9); scenes: split 87.7, panel 45.7, group 42.9, inset "
                     "70.7 (lrasd-ava 70.4 / 39.2 / 39.4 / 71.8); the voice's owner highest on 0.82 of composite "
                     "speech frames (lrasd-ava 0.57); a face under another's voice called speaking on 11.9% of its "
                     "frames (lrasd-ava 85.6%, lrasd-vasp-se-full 2.4%)")
_VASP_LICENCE = "MIT (the weights); the VASP clips are not shipped (no licence stated)"
_FINE_TUNED = (
    ShippedModel("lrasd-vasp-se", LRASD, "lr-asd/finetuning_TalkSet.model", True, _VASP, _VASP_LICENCE,
                 f"{_LRASD} + asd-se", _VASP_FIGURES, trained="asd-se/lrasd-vasp-se.pt"),
    ShippedModel("lrasd-vasp-se-full", LRASD, "lr-asd/finetuning_TalkSet.model", True, _VASP_FULL, _VASP_LICENCE,
                 f"{_LRASD} + asd-se", _VASP_FULL_FIGURES, trained="asd-se/lrasd-vasp-se-full.pt"),
    ShippedModel("lrasd-ava-vasp-se", LRASD, "lr-asd/pretrain_AVA.model", True, _AVA_VASP, _VASP_LICENCE,
                 f"{_LRASD} + asd-se", _AVA_VASP_FIGURES, trained="asd-se/lrasd-ava-vasp-se.pt"),
)
SHIPPED = {model.name: model for model in _PUBLISHED + _FINE_TUNED}
DEFAULT_MODEL = "lrasd-ava-vasp-se"  # what `asd-se render` and `live` use without --checkpoint: the shipped model
# with the best multi-domain validation (AVA's encoders, a back end that learned whose voice it hears in scenes)


def shipped_payload(name: str) -> dict:
    """The checkpoint payload (as ``load_checkpoint`` returns it) of the shipped model called ``name``."""
    model = SHIPPED[name]
    payload = published_payload(model.path, model.family, se=model.se)
    payload["source"].update(shipped=name, trained_on=model.trained_on)
    if model.trained:
        tuned = torch.load(model.trained_path, map_location="cpu", weights_only=True)
        payload["model"].update(tuned["model"])
        payload["config"] = tuned["config"]
        payload["source"].update(tuned["source"], shipped=name)
    return payload


VALIDATION = "validation.json"  # in WEIGHTS_FOLDER: the multi-domain validation, written by bench_talkset --table


def validation() -> dict | None:
    """The multi-domain validation measured on the shipped models (``scripts/bench_talkset.py --table``): its
    conditions, its slices and per model and slice ``[mAP, low, high]`` (95% interval); None where not shipped."""
    path = _packaged(VALIDATION)
    return json.loads(path.read_text()) if path.is_file() else None


def validation_table(measured: dict) -> list[str]:
    """The validation as text: a row per model, a column per slice (mAP, its 95% interval below it); then a line
    per decision measure (whose voice, false positives, onset error...) with each model's value."""
    slices, width = measured["slices"], max(len(name) for name in measured["models"]) + 2
    lines = [f"multi-domain validation (mAP [95% interval]; {measured['conditions']})",
             " " * width + "".join(f"{name:>19}" for name in slices)]
    for name, cells in measured["models"].items():
        values = [cells.get(key) for key in slices]
        lines.append(f"{name:<{width}}" + "".join(f"{v[0]:>19.1f}" if v else f"{'-':>19}" for v in values))
        lines.append(" " * width + "".join(f"{f'[{v[1]:.1f}, {v[2]:.1f}]':>19}" if v else " " * 19
                                          for v in values))
    measures = measured.get("measures", {})
    names = list(dict.fromkeys(key for row in measures.values() for key in row))
    for key in names:
        values = "; ".join(f"{model} {_measure(key, row.get(key))}" for model, row in measures.items())
        lines.append(f"{key}: {values}")
    return lines


def _measure(key: str, value: float | None) -> str:
    """A decision measure as text: an error in ms (``key`` says so) whole, a share (0-1) to two places, '-' where
    not measured."""
    return "-" if value is None else f"{value:.0f}" if key.endswith("(ms)") else f"{value:.2f}"


def models_table() -> str:
    """``asd-se models``: every shipped model, one block each, then the multi-domain validation's table."""
    lines = []
    for model in SHIPPED.values():
        default = " (render's default)" if model.name == DEFAULT_MODEL else ""
        lines += [f"{model.name}{default}", f"  family:     {model.family.name}{' + SE block' if model.se else ''}",
                  f"  trained on: {model.trained_on}", f"  licence:    {model.licence}; source {model.source}",
                  f"  sha256:     {model.sha256()}", f"  measured:   {model.figures}", ""]
    measured = validation()
    if measured is not None:
        lines += validation_table(measured)
    return "\n".join(lines).rstrip() + "\n"
