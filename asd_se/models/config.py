"""Typed configuration: YAML files in ``configs/`` read into dataclasses, with ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asd_se.core.crop import CROP_STYLES
from asd_se.core.devices import check_device_name
from asd_se.core.errors import ConfigError
from asd_se.core.options import AT_LEAST_ONE, NOT_NEGATIVE, POSITIVE, Range, bounded, check_choice, check_settings

VARIANTS = ("light", "resnet18", "lightasd", "lrasd")
FRONTENDS = ("asd-se", "lightasd")  # styles of THE audio front end (models/frontend.py)
SE_SQUEEZES = ("clip", "frame")
FUSIONS = ("sum", "cross_attention")
BACKENDS = ("gru", "attention")
FREEZES = ("none", "encoders")  # train.freeze: what stays as the initial checkpoint has it (features.py)
MAP_SIZES = {"light": (7, 14), "resnet18": (7,), "lightasd": (14,), "lrasd": (14,)}
PUBLISHED_VARIANTS = ("lightasd", "lrasd")  # published architectures: their embedding, fusion and back end are fixed


@dataclass
class ModelConfig:
    """The two-stream model. ``variant``: light (~1M params) or resnet18 (3D stem + ResNet-18)."""

    variant: str = "light"
    se: bool = True
    se_squeeze: str = "clip"  # clip: squeeze over (T, h, w) -> SE vector (B, C); frame: over (h, w) -> (B, T, C)
    se_reduction: int = bounded(4, Range(1, 256))
    map_size: int = 7  # side of the visual maps the heatmaps come from: light 7 or 14 (finer, slower); lightasd 14
    embed_dim: int = bounded(128, Range(1, 4096))
    fusion: str = "sum"  # sum | cross_attention
    backend: str = "gru"  # gru | attention
    se_identity: bool = False  # the SE block starts as the identity (for inserting it into a trained model)
    frontend: str = "asd-se"  # THE audio front end's style: asd-se | lightasd (python_speech_features' MFCC)
    crop: str = "asd-se"  # THE crop's style: asd-se | lightasd (Light-ASD's video inference crop)

    def __post_init__(self) -> None:
        check_settings(self, "model.")
        check_choice("model.variant", self.variant, VARIANTS)
        check_choice("model.se_squeeze", self.se_squeeze, SE_SQUEEZES)
        check_choice("model.fusion", self.fusion, FUSIONS)
        check_choice("model.backend", self.backend, BACKENDS)
        check_choice(f"model.map_size (variant {self.variant})", self.map_size, MAP_SIZES[self.variant])
        check_choice("model.frontend", self.frontend, FRONTENDS)
        check_choice("model.crop", self.crop, CROP_STYLES)
        if self.variant in PUBLISHED_VARIANTS and (self.embed_dim, self.fusion, self.backend) != (128, "sum", "gru"):
            raise ConfigError(f"model.variant {self.variant} has its own fixed embedding (128), fusion and back end "
                              f"(two GRUs): leave model.embed_dim, model.fusion and model.backend at their defaults")


@dataclass
class TrainConfig:
    """The training loop."""

    epochs: int = bounded(10, AT_LEAST_ONE)
    lr: float = bounded(5e-4, POSITIVE)
    weight_decay: float = bounded(1e-4, NOT_NEGATIVE)
    frame_budget: int = bounded(400, AT_LEAST_ONE)  # about this many face-frames per batch (small: faster on CPU)
    max_frames: int = bounded(100, AT_LEAST_ONE)  # longest training window (4 s at 25 fps)
    min_frames: int = bounded(25, AT_LEAST_ONE)
    aux_weight: float = bounded(0.4, NOT_NEGATIVE)  # weight of the audio-only and visual-only losses
    grad_clip: float = bounded(5.0, POSITIVE)
    augment: bool = True
    loader_workers: int = bounded(-1, Range(-1))  # -1: auto (none on CPU; up to 10 per GPU process)
    amp: bool = True  # mixed precision (bfloat16) on CUDA only
    seed: int = 0
    bootstrap: int = bounded(1000, NOT_NEGATIVE)  # draws of the val videos for each epoch's val mAP interval
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = bounded(0, NOT_NEGATIVE)  # torch CPU threads (0: torch's default)
    freeze: str = "none"  # none | encoders: train the SE block and all after it on the frozen encoders' features
    voice_swap: float = bounded(0.0, Range(0.0, 1.0))  # freeze=encoders: share of windows heard with another
    # video's voice, every frame then labelled not speaking
    live_windows: float = bounded(0.0, Range(0.0, 1.0))  # share of windows trained as `asd-se live` decides: the
    # loss only on their frames with at most live_future frames after them (the frames before: context)
    live_future: int = bounded(50, NOT_NEGATIVE)  # live windows: the most future frames a trained frame has (2 s)
    se_sparsity: float = bounded(0.0, NOT_NEGATIVE)  # weight of the mean SE value in the loss: the gates of channels
    # the decision does not need sink toward 0, so the SE vector ranks channels by use (network slimming's L1)


    def __post_init__(self) -> None:
        check_settings(self, "train.")
        if self.min_frames > self.max_frames:
            raise ConfigError(f"train.min_frames ({self.min_frames}) must not exceed train.max_frames "
                              f"({self.max_frames})")
        check_device_name("train.device", self.device)
        check_choice("train.freeze", self.freeze, FREEZES)
        if self.voice_swap and self.freeze == "none":
            raise ConfigError("train.voice_swap works on the frozen encoders' features: set train.freeze=encoders")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.train.se_sparsity and not self.model.se:
            raise ConfigError("train.se_sparsity weighs the SE block's gates: the model has none (model.se=false)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """Strict: unknown sections or keys are errors, so a typo never silently trains the wrong thing."""
        sections = {"model": ModelConfig, "train": TrainConfig}
        unknown = set(data) - set(sections)
        if unknown:
            raise ConfigError(f"unknown config sections {sorted(unknown)} (known: model, train)")
        built = {}
        for name, kind in sections.items():
            values = dict(data.get(name) or {})
            known = {f.name for f in dataclasses.fields(kind)}
            if set(values) - known:
                raise ConfigError(f"unknown keys in '{name}': {sorted(set(values) - known)} (known: {sorted(known)})")
            hints = typing.get_type_hints(kind)
            built[name] = kind(**{key: _typed(f"{name}.{key}", value, hints[key]) for key, value in values.items()})
        return cls(**built)


def _typed(name: str, value, kind: type):
    """``value`` as the field's type: ints widen to floats and numeric text (``2e-3``, which YAML 1.1 reads as
    a string) becomes a number; anything else of the wrong type is a ConfigError naming the key."""
    if kind is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif kind is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"{name} must be a {kind.__name__}, not {value!r}")


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML keeps the last silently: a second
    ``train:`` section would replace the first whole)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                    "give each once", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _yaml(text: str, where: str):
    """``text`` read as YAML, strictly; ConfigError starting with ``where`` (what it is, named) where it cannot
    be."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or str(err)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{where} ({at}{problem})") from err


def apply_override(data: dict, assignment: str) -> None:
    """Apply one ``section.key=value`` (value parsed as YAML) to a config dict, in place."""
    if "=" not in assignment or "." not in assignment.split("=", 1)[0]:
        raise ConfigError(f"--set wants section.key=value, e.g. train.lr=0.001, not {assignment!r}")
    path, text = assignment.split("=", 1)
    section, key = path.split(".", 1)
    values = data.setdefault(section, {})
    if not isinstance(values, dict):
        raise ConfigError(f"--set {assignment}: section {section!r} is not a mapping of settings")
    values[key] = _yaml(text, f"--set {assignment}: the value is not valid YAML")


def load_config(path: Path | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: Config | None = None) -> Config:
    """``base`` (default: the defaults), updated by a YAML file, updated by overrides. The file's errors name
    it: invalid or duplicated YAML, a top level or a section that is not a mapping."""
    data = (base or Config()).to_dict()
    if path is not None:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not a readable YAML config ({err})") from err
        loaded = _yaml(text, f"{path}: not a readable YAML config") or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config maps sections (model:, train:) to settings, "
                              f"not a {type(loaded).__name__}")
        for section, values in loaded.items():
            if values is not None and not isinstance(values, dict):
                raise ConfigError(f"{path}: section {section!r} must map settings to values, not a "
                                  f"{type(values).__name__}")
            data.setdefault(section, {}).update(values or {})
    for assignment in overrides:
        apply_override(data, assignment)
    return Config.from_dict(data)
