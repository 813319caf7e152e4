"""An asd-se model as ONNX, and run by onnxruntime behind the same interface the scoring engine uses.

The graph is everything after THE audio front end, which stays a torch module (MFCC, ``frontend.py``): inputs
``faces (1, T, 112, 112)`` uint8 and ``features (1, K, 4·T)`` (the front end's output), outputs the three heads'
logits and the reported score ``(1, T)``, the SE vector (where the model has an SE block: ``(1, C)`` or
``(1, T, C)``) and the explained layer's maps ``(1, C, T, h, w)`` — all an SE map needs, from one run. ``T`` is
dynamic. The file carries the checkpoint's config and provenance as metadata, so it is loaded alone.
Gradient explainers need torch (``OnnxAsdModel`` has no ``decide`` to differentiate).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from asd_se.core.errors import CheckpointError
from asd_se.core.fsio import atomic_path
from asd_se.core.media import SAMPLES_PER_FRAME
from asd_se.models.config import Config
from asd_se.models.frontend import MfccFrontEnd
from asd_se.models.output import ASDOutput

OPSET = 17
METADATA_KEY = "asd-se"  # the metadata entry holding the config and provenance (JSON)
PARITY_TOLERANCE = 1e-4  # largest difference of a per-frame probability, onnxruntime vs torch, an export accepts
PARITY_FRAMES = (50, 37)  # the export's trace length, and a second length the check runs at (dynamic T)
HEADS = ("logits", "audio_logits", "visual_logits", "scores")


class _Graph(nn.Module):
    """What is exported: faces + front-end features -> heads, SE vector, maps (one unchunked pass)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, faces: torch.Tensor, features: torch.Tensor):
        model = self.model
        maps = model.visual((faces.float() / 255.0 - model.face_mean).div(model.face_std).unsqueeze(1))
        sound = model.audio(features)[:, :faces.shape[1]]
        output = model.decide_pooled(model.pool(maps), sound, explain=True)
        scores = output.logits if output.scores is None else output.scores
        heads = (output.logits, output.audio_logits, output.visual_logits, scores)
        return (*heads, output.se_weights, maps) if output.se_weights is not None else (*heads, maps)


@dataclass(frozen=True)
class Parity:
    """The export's check: the largest per-frame probability difference, onnxruntime vs torch, per length."""

    max_difference: dict[int, float]

    @property
    def worst(self) -> float:
        return max(self.max_difference.values())


def random_clip(model: nn.Module, frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random clip: faces ``(1, frames, 112, 112)`` uint8 and audio with the front end's context."""
    generator = torch.Generator().manual_seed(seed)
    faces = torch.randint(0, 256, (1, frames, 112, 112), dtype=torch.uint8, generator=generator)
    audio = torch.randn(1, frames * SAMPLES_PER_FRAME + sum(model.audio_context), generator=generator) * 3000
    return faces, audio


def export_onnx(model: nn.Module, config: Config, source: str, path: Path) -> Parity:
    """Write ``model`` (eval mode, CPU) as ONNX to ``path`` with its config, checked against torch by
    onnxruntime at two clip lengths; nothing is written where the check fails (CheckpointError)."""
    import onnx  # the exporter's own dependency, as the check's onnxruntime: imported only here

    model = model.cpu().eval()
    graph = _Graph(model).eval()  # export restores the wrapper's mode onto every submodule: keep it eval
    faces, audio = random_clip(model, PARITY_FRAMES[0], seed=0)
    features = model.frontend(audio, faces.shape[1])
    names = [*HEADS, *(["se_weights"] if model.se is not None else []), "maps"]
    dynamic = {"faces": {1: "frames"}, "features": {2: "steps"}, **{name: {1: "frames"} for name in HEADS},
               "maps": {2: "frames"}}
    if model.se is not None and config.model.se_squeeze == "frame":
        dynamic["se_weights"] = {1: "frames"}
    metadata = {"config": config.to_dict(), "source": source,
                "se_untrained": bool(model.se is not None and model.se.untrained), "opset": OPSET}
    with atomic_path(path) as scratch:
        with torch.no_grad(), warnings.catch_warnings():  # the tracer's notes on shape checks it keeps dynamic
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (faces, features), str(scratch), dynamo=False, opset_version=OPSET,
                              input_names=["faces", "features"], output_names=names, dynamic_axes=dynamic)
        proto = onnx.load(str(scratch))
        proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
        onnx.save(proto, str(scratch))
        onnx_model = OnnxAsdModel(scratch)
        parity = Parity({frames: _difference(model, onnx_model, *random_clip(model, frames, seed=frames))
                         for frames in PARITY_FRAMES})
        if parity.worst > PARITY_TOLERANCE:
            raise CheckpointError(f"{source}: the ONNX graph's probabilities differ from torch's by up to "
                                  f"{parity.worst:.2e} (> {PARITY_TOLERANCE:g}); nothing was written")
    return parity


def _difference(model: nn.Module, onnx_model: "OnnxAsdModel", faces: torch.Tensor, audio: torch.Tensor) -> float:
    with torch.no_grad():
        ours, theirs = model(faces, audio), onnx_model(faces, audio)
    return max(float((torch.sigmoid(getattr(ours, head)) - torch.sigmoid(getattr(theirs, head))).abs().max())
               for head in ("logits", "audio_logits", "visual_logits"))


class _SeSummary:
    """What the ONNX file says of its SE block (render warns on an untrained one)."""

    def __init__(self, untrained: bool):
        self.untrained = untrained


class OnnxAsdModel:
    """An exported model run by onnxruntime, with what the scoring engine calls: ``model(faces, audio,
    explain)`` -> ASDOutput (feature maps with ``explain``), ``audio_context``, ``se``, ``eval()``."""

    def __init__(self, path: Path, threads: int = 0):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise CheckpointError(f"{path}: not an ONNX model onnxruntime can load ({err})") from err
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise CheckpointError(f"{path}: an ONNX file without asd-se's metadata; write it with asd-se export onnx")
        meta = json.loads(meta)
        self.config = Config.from_dict(meta["config"])
        self.frontend = MfccFrontEnd(self.config.model.frontend)
        self.outputs = [output.name for output in self.session.get_outputs()]
        self.se = _SeSummary(meta["se_untrained"]) if "se_weights" in self.outputs else None
        self.source = str(path)

    @property
    def audio_context(self) -> tuple[int, int]:
        return self.frontend.context

    def eval(self) -> "OnnxAsdModel":
        return self

    def __call__(self, faces: torch.Tensor, audio: torch.Tensor, explain: bool = False) -> ASDOutput:
        """Faces ``(1, T, H, W)`` uint8 + audio as the front end takes it -> ASDOutput (on the faces' device)."""
        features = self.frontend(audio.cpu().float(), faces.shape[1])
        values = self.session.run(None, {"faces": np.ascontiguousarray(faces.cpu().numpy(), dtype=np.uint8),
                                         "features": features.numpy()})
        got = {name: torch.from_numpy(value).to(faces.device) for name, value in zip(self.outputs, values)}
        return ASDOutput(got["logits"], got["audio_logits"], got["visual_logits"],
                         feature_maps=got["maps"].transpose(1, 2) if explain else None,
                         se_weights=got.get("se_weights") if explain else None, scores=got["scores"])
