"""asd-se: active speaker detection that explains itself with Squeeze-and-Excitation heatmaps.

The public API, importable from here (each name is loaded on first use, so ``import asd_se`` stays light):

- ``load_model(name_or_path, device)``: a shipped model (``SHIPPED``, ``DEFAULT_MODEL``) or a checkpoint ->
  ``(model, config)``;
- ``render_video(video, checkpoint, out, settings=RenderSettings(...))``: what ``asd-se render`` does;
- ``score_track(model, faces, audio, device, ...)``: one face track's probabilities and maps (THE scoring engine);
- ``insert_se``, ``SqueezeExplainer``, ``ChannelSelection``, ``SeGates``: SE maps for any PyTorch model.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "load_model": "asd_se.models.loading", "SHIPPED": "asd_se.models.zoo", "DEFAULT_MODEL": "asd_se.models.zoo",
    "render_video": "asd_se.render.pipeline", "RenderSettings": "asd_se.render.pipeline",
    "score_track": "asd_se.scoring.engine",
    "insert_se": "asd_se.explain", "SqueezeExplainer": "asd_se.explain", "ChannelSelection": "asd_se.explain",
    "SeGates": "asd_se.explain",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    """A public name, imported from its home module the first time it is asked for."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'asd_se' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
