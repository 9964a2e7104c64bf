"""Live outputs that must not outlive their kernel: at shutdown each becomes its static picture.

A notebook saved after its kernel ended showed "Error displaying widget: model not found" in
every ``%cluster`` cell: JupyterLab prefers the widget mime type to the ``text/html`` next to
it, and the widget's model died with the kernel. So every live output (a run's view, the
cluster widget) registers here, and when the kernel is asked to shut down (or restart) each
replaces its output with its static HTML before the kernel goes.
"""

from __future__ import annotations

import inspect
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


def install_shutdown_hook(shell: Any) -> None:
    """Freeze the live outputs when ``shell``'s kernel is asked to shut down or restart.

    ipykernel has no shutdown event, so its ``do_shutdown`` is wrapped (once); a terminal
    IPython has no kernel and nothing to freeze.
    """
    kernel = getattr(shell, "kernel", None)
    if kernel is None or getattr(kernel.do_shutdown, "_ipydistribute", False):
        return
    original = kernel.do_shutdown

    async def do_shutdown(restart: bool) -> Any:
        freeze_all()
        result = original(restart)
        return await result if inspect.isawaitable(result) else result

    do_shutdown._ipydistribute = True  # type: ignore[attr-defined]
    kernel.do_shutdown = do_shutdown
