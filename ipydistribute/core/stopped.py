"""How a stopped run ends in a cell: one line, with what was done and what is left.

A run stopped by the notebook's interrupt or by the view's Stop button is cancelled
(:meth:`Run.cancel`); the cell then shows this line instead of a traceback through the engine.
"""

from __future__ import annotations

import time
from typing import Any

from .errors import RunLostError, label_text

#: Seconds to wait for the scheduler to drop the run's tasks after a cancel (measured: < 0.1 s).
SETTLE_SECONDS = 2.0


class RunStopped(RunLostError):
    """A run was stopped on request (interrupt or Stop button): its tasks are gone."""


def _tasks_of(dask_scheduler: Any, token: str) -> int:
    # Runs on the scheduler: keys are ``(f"{label}-{role}-{token}", index)`` or plain strings.
    suffix = f"-{token}"
    return sum(1 for key in dask_scheduler.tasks
               if (key[0] if isinstance(key, tuple) else str(key)).endswith(suffix))


def tasks_left(client: Any, token: str, settle: float = SETTLE_SECONDS) -> int | None:
    """Tasks of run ``token`` the scheduler still holds, once the cancel has settled.

    None when the scheduler cannot be asked (the cluster is gone).
    """
    deadline = time.monotonic() + settle
    while True:
        try:
            left = int(client.run_on_scheduler(_tasks_of, token=token))
        except Exception:  # the scheduler went away with the run: nothing to ask any more
            return None
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def stopped_error(run: Any) -> RunStopped:
    """The one line a stopped run ends with: the cell, items done, tasks left on the cluster."""
    p = run.progress()
    total = "?" if p.items_total is None else f"{p.items_total:,}"
    left = tasks_left(run.client, run.token)
    where = "unknown (the cluster is gone)" if left is None else f"{left}"
    return RunStopped(f"{label_text(run.label)} stopped: {p.items_done:,}/{total} items done · "
                      f"tasks left on the cluster: {where}")
