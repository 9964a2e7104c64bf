"""Dask's log records go to Dask's logs, never into a notebook cell.

Dask attaches a stderr handler to its loggers at import. In a kernel, stderr is the running
cell, and the worker processes of an embedded cluster inherit the kernel's stderr, so a failing
item printed a ``distributed.worker - ERROR - Compute Failed`` block, and a busy ``%cluster
stop`` nanny warnings, into the cell. Here those stream handlers are replaced by one file
handler; every record also stays in Dask's own in-memory logs (``client.get_worker_logs()``,
``client.get_scheduler_logs()``, the dashboard's info pages).
"""

from __future__ import annotations

import logging
import os
import tempfile

#: The loggers Dask configures at import (distributed/config.py), and their children.
DASK_LOGGERS = ("distributed", "bokeh", "tornado")


def log_file() -> str:
    """Where this user's Dask records go: ``$TMPDIR/ipydistribute-dask-UID.log``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"ipydistribute-dask-{uid}.log")


class _DaskFileHandler(logging.FileHandler):
    """Ours: recognised when the loggers are set up again (a restarted cluster, a second call)."""


def keep_out_of_cells(path: str | None = None) -> str:
    """Move Dask's stream handlers (stderr: the cell) to a log file; returns its path."""
    path = path or log_file()
    names = [name for name in list(logging.root.manager.loggerDict)
             if name.split(".")[0] in DASK_LOGGERS]
    shared: logging.Handler | None = None
    for name in names:
        logger = logging.getLogger(name)
        streams = [h for h in logger.handlers if type(h) is logging.StreamHandler]
        if not streams:
            continue
        for handler in streams:
            logger.removeHandler(handler)
        if not any(isinstance(h, _DaskFileHandler) for h in logger.handlers):
            if shared is None:
                shared = _DaskFileHandler(path, delay=True)
                shared.setFormatter(streams[0].formatter)
            logger.addHandler(shared)
    return path
