"""The embedded cluster's scheduler and nannies, which run inside the kernel process.

Each Dask server ticks its event-loop monitor every 20 ms and samples its process's CPU, memory,
network and disk every 500 ms. In the embedded cluster the scheduler and every nanny are servers
of the kernel's own process: three samplers measured the same process, and the ticks and samples
cost the kernel's event loop 43 ms of CPU per second while idle (22 ms with the intervals below),
time taken from the workers on a 2-core machine. The worker processes get the same intervals
through ``ipydistribute.embedded-worker-config``. A nanny's memory watch (every 100 ms, which
ends a worker that outgrows its limit) is left as Dask sets it.
"""

from __future__ import annotations

from typing import Any

from distributed import Nanny, Scheduler

#: Milliseconds between a kernel-side server's event-loop ticks and its system samples.
KERNEL_SIDE_INTERVALS_MS = {"tick": 200.0, "monitor": 2000.0}


def _quieten(server: Any) -> None:
    for name, milliseconds in KERNEL_SIDE_INTERVALS_MS.items():
        callback = server.periodic_callbacks.get(name)
        if callback is not None:
            callback.callback_time = milliseconds


class EmbeddedScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        _quieten(self)


class EmbeddedNanny(Nanny):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        _quieten(self)
