"""Choosing the view of a run for the frontend at hand."""

from __future__ import annotations

from typing import Any

from ..core.run import Run
from .live import LiveDisplay, RunView


def in_kernel(shell: Any) -> bool:
    """Whether a Jupyter frontend can show widgets (a kernel), not a terminal IPython."""
    return getattr(shell, "kernel", None) is not None


def make_view(run: Run, kind: str, shell: Any) -> RunView | None:
    if kind == "none" or not in_kernel(shell):
        return None
    from .progress import ProgressView

    return ProgressView(run.label)


def live_display(run: Run, kind: str, shell: Any) -> LiveDisplay:
    """Show ``run`` (or only forward its output, with ``kind='none'``) until it ends."""
    parent = shell.get_parent() if in_kernel(shell) and hasattr(shell, "get_parent") else None
    return LiveDisplay(run, make_view(run, kind, shell), parent).start()
