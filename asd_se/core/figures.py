"""Figures written as PNG files: matplotlib's object API on the Agg canvas (no global pyplot state, no
display), saved atomically. matplotlib is imported when a figure is made (0.3 s a command that draws none
need not pay)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asd_se.core.fsio import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches that can be drawn without a display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: Path, dpi: int = 100) -> None:
    """Lay the figure out and write it to ``path`` as a PNG, atomically."""
    figure.tight_layout()
    with atomic_path(Path(path)) as tmp:
        figure.savefig(tmp, dpi=dpi)
