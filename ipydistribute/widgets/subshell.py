"""Widget events handled while a cell blocks: the page's comm subshell, not the busy main shell.

JupyterLab >= 4.4 and Notebook 7 send comm messages on a kernel subshell (the setting
"Kernel Comms over subshells", default "One subshell per comm-target"), and ipykernel >= 7
runs each subshell in its own thread. But ipykernel 7.4 routes a comm's incoming messages to
the subshell that last *published* on that comm (so a reply reaches the loop that awaits it):
a widget created by a cell published from the main shell, so its clicks queue behind the cell
that blocks. Measured in Chromium: a Stop click in a cell that blocked 15 s was handled when
the cell ended; with the route below it was handled 50 ms after the click, in the subshell's
thread, in JupyterLab 4.6 and Notebook 7.6 alike.

Only widgets that send events and never await a reply (a button) may take this route. Where
the page sends no subshell id (comms over subshells turned off, an older frontend) the message
goes to the main shell as before, and the click is handled when the cell ends.
"""

from __future__ import annotations

from typing import Any


def _frontend_route(data: Any, subshell_id: str | None) -> str | None:
    """ipykernel's hook: which subshell handles a message; here, the one the page chose."""
    return subshell_id


def handle_while_cell_runs(widget: Any) -> Any:
    """Let the page's messages for ``widget`` run at once, in the page's comm subshell.

    Returns ``widget``. Harmless on a kernel without subshells (the hook is never read).
    """
    comm = getattr(widget, "comm", None)
    if comm is not None:
        comm._reply_subshell_for = _frontend_route  # read by ipykernel 7.4's shell channel thread
    return widget
