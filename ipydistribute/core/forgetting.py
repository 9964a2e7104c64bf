"""The end of a run: its tasks are gone from the scheduler, and its garbage from the kernel,
before the cell returns.

Once the run's last futures are released, the scheduler forgets its tasks (2,046 for 2,000
one-item tasks and their reduction) and tells the workers to drop their data. A cell that
returned before that left the work to the next cell: the first auto-batched 10,000-item cell
after a 2,000-task cell took 1.7x the time it takes on a quiet scheduler (medians of 5 pairs,
bench/round3.py). Waiting here, in the run that made the tasks, costs that run the same time
and keeps the next one clean; a notebook cell does not start on a cluster busy with the last.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

#: Runs with fewer tasks leave too little to forget to be worth a round trip.
MIN_TASKS = 200
#: The longest a run waits for the scheduler to forget its tasks.
WAIT_SECONDS = 1.0


async def _forget_wait(token: str, timeout: float, dask_scheduler: Any = None) -> int:
    """On the scheduler: wait until no task key of run ``token`` is left; returns how many are."""
    suffix = f"-{token}"
    deadline = time.monotonic() + timeout
    while True:
        left = sum(1 for key in dask_scheduler.tasks if isinstance(key, tuple) and str(key[0]).endswith(suffix))
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.005)


def wait_forgotten(client: Any, token: str, tasks: int, timeout: float = WAIT_SECONDS) -> None:
    """After the run released its futures: wait (at most ``timeout``) for the scheduler to forget
    the run's ``tasks`` tasks. Never raises: a closed client has nothing left to forget."""
    if tasks < MIN_TASKS:
        return
    try:
        client.run_on_scheduler(_forget_wait, token, timeout)
    except Exception:  # noqa: BLE001 - the cluster may be gone; the run's value is what matters
        pass
