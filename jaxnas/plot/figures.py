"""Figures without pyplot: every plot function returns a :class:`matplotlib.figure.Figure` drawn on the Agg canvas
(no display, no global state), and :func:`save_figure` writes it with fixed metadata, so the same input gives the
same bytes."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

FORMATS = ("png", "svg")
_STYLE = {"svg.hashsalt": "jaxnas", "svg.fonttype": "path", "font.size": 9, "axes.titlesize": 10}
# what a saved file records about itself: nothing that changes between runs (no date, a fixed creator)
_METADATA = {"png": {"Software": "jaxnas"}, "svg": {"Date": None, "Creator": "jaxnas"}}


def styled(fn):
    """Run a plot function under the package's style (font sizes, SVG ids), leaving global rcParams alone."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_STYLE):
            return fn(*args, **kwargs)
    return wrapper


def new_figure(width: float, height: float) -> Figure:
    """A figure ``width`` x ``height`` inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path, fmt: str | None = None, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` as PNG or SVG (``fmt``, else the path's suffix); the same figure gives the same
    bytes. Returns the path."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "png").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r}; allowed: {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(_STYLE):
        fig.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA[fmt], bbox_inches="tight")
    return path


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes (for ``IPython.display.Image(data=...)`` in a notebook, or a web page)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(_STYLE):
        fig.savefig(buffer, format="png", dpi=dpi, metadata=_METADATA["png"], bbox_inches="tight")
    return buffer.getvalue()


def math_label(label: str) -> str:
    """``c_{k-1}`` drawn as mathtext (a subscript; ``\u2192`` as an arrow), anything without ``_`` as it is."""
    if "_" not in label or "$" in label:
        return label
    return "$" + label.replace(" ", r"\ ").replace("\u2192", r"\rightarrow ") + "$"


__all__ = ["FORMATS", "math_label", "new_figure", "png_bytes", "save_figure", "styled"]
