"""Preloaded into every worker process of an embedded cluster (Dask's ``preload`` hook).

Jupyter interrupts a kernel by signalling its whole process group, and the worker processes of
a cluster started from the kernel are in that group: without this, Ctrl-C in the notebook would
kill them (dask/distributed#1925). Restarted workers run the preload again, so they keep it.
It also gives Dask its own ``random`` generator (see ``core/seeding.py``), makes the worker's
stream to the scheduler send at once, as the embedded scheduler's do (``core/embedded_servers.py``),
and keeps the garbage collector off the worker's own objects (:func:`spare_the_collector`).
"""

from __future__ import annotations

import gc
import os
import signal
import threading
from typing import Any

#: Three times CPython's collection thresholds, as Dask's own ``dask worker`` and ``dask scheduler``
#: commands set them (dask/distributed#1653); a worker started by a nanny keeps the defaults.
GC_THRESHOLDS = (2100, 30, 30)


def ignore_interrupts() -> str:
    """Make this process deaf to the kernel's interrupt; returns how."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return "sigint-ignored"
    os.setpgrp()  # signals can only be set from the main thread: leave the group instead
    return "own-process-group"


def spare_the_collector() -> int:
    """Collect less often, and never scan the objects the worker starts with again; returns how
    many objects were set aside.

    A full collection scans every tracked object, and a worker holds about 62,000 of Dask's and
    its libraries' before its first task, none of which become garbage: items that build records
    (lists of dicts and tuples) spent two thirds of their time in collections that walked them
    (docs/performance.md).
    """
    gc.set_threshold(*GC_THRESHOLDS)
    gc.collect()  # what is garbage now is freed, not set aside
    gc.freeze()
    return gc.get_freeze_count()


def dask_setup(worker: Any) -> None:
    """Called by Dask when the worker starts."""
    worker._ipydistribute_interrupts = ignore_interrupts()
    from .embedded_servers import STREAM_SEND_INTERVAL

    worker.batched_stream.interval = STREAM_SEND_INTERVAL  # see core/embedded_servers.py
    from .seeding import isolate_dask_random

    isolate_dask_random()  # the heartbeat's dask.sizeof must not draw from the user's random

    from .dask_logs import keep_out_of_cells

    keep_out_of_cells()  # this process's stderr is the kernel's: the running cell
    if threading.current_thread() is threading.main_thread():  # a process of its own, not a notebook's
        spare_the_collector()  # last: what the setup made is set aside too
