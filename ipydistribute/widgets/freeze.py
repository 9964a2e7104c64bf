"""Live outputs that must not outlive their kernel: at shutdown each becomes its static picture.

A notebook saved after its kernel ended showed "Error displaying widget: model not found" in
every ``%cluster`` cell: JupyterLab prefers the widget mime type to the ``text/html`` next to
it, and the widget's model died with the kernel. So every live output (a run's view, the
cluster widget) registers here, and when the kernel is asked to shut down (or restart) each
replaces its output with its static HTML before the kernel goes.
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol


class LiveOutput(Protocol):
    def freeze(self) -> None:
        """Replace the displayed widget with a static picture (called from the control thread)."""


_live: weakref.WeakSet[Any] = weakref.WeakSet()


def register(output: LiveOutput) -> None:
    _live.add(output)


def unregister(output: LiveOutput) -> None:
    _live.discard(output)


def freeze_all() -> None:
    """Freeze every live output (the kernel is shutting down)."""
    for output in list(_live):
        try:
            output.freeze()
        except Exception:  # a shutdown goes on whatever one output does
            pass
        _live.discard(output)
