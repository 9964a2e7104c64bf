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


def end_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker, if this process started one.

    A nanny starts its worker with the ``spawn`` method, which starts the tracker: a child of
    the kernel that ignores SIGINT and SIGTERM and ends only when the kernel closes its pipe.
    ipykernel, asked to shut down, sends SIGTERM to its children and checks again after 0.01,
    0.03, 0.1, 0.3, 1 and 3 s: the tracker outlived all of them, and jupyter_client ended the
    kernel with SIGTERM after 2.5 s. Closing the pipe makes the tracker clean up and exit now
    (a later spawn starts a new one)."""
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    if getattr(tracker, "_fd", None) is not None:
        tracker._stop()  # type: ignore[attr-defined]  # private, in every Python since 3.8
