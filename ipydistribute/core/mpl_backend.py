"""The matplotlib backend of worker processes (``module://ipydistribute.core.mpl_backend``):
Agg drawing, and a ``show()`` that sends the open figures to the notebook as PNG."""

from __future__ import annotations

from typing import Any

from matplotlib.backend_bases import FigureManagerBase as FigureManager  # noqa: F401
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas  # noqa: F401


def show(*args: Any, **kwargs: Any) -> None:
    from .item_output import show_figures

    show_figures()
