"""Runs started inside an item use the cluster the item runs on.

On a worker, ``distribute(...)`` (and ``%distribute`` / ``%%distribute`` in a cell: IPython has
turned them into ``get_ipython().run_line_magic(...)`` calls before the cell was sent) must not
start a cluster of its own (a worker process cannot have children) but submit through the
worker's client. While the inner run goes, the item's thread leaves the worker's thread pool
(Dask's ``secede``/``rejoin``, as ``worker_client`` does), so the inner tasks can use it.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import importlib
import threading
from collections.abc import Iterator
from typing import Any


def in_task() -> bool:
    """Whether this thread runs a task on a Dask worker."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


@functools.cache
def dedicated_worker_process() -> bool:
    """Whether this process is a worker's own (its event loop on the main thread), rather than a
    notebook or script hosting threaded workers (``LocalCluster(processes=False)``), whose
    modules, warnings, ``display`` and matplotlib backend the items must leave as they are.
    Called from a task."""
    try:
        from distributed import get_worker

        loop = get_worker().loop.asyncio_loop
    except (ImportError, ValueError, AttributeError):
        return False
    return getattr(loop, "_thread_id", None) == threading.main_thread().ident


def task_client() -> Any:
    """The client of the worker this task runs on (Dask makes one per worker and reuses it)."""
    from distributed import get_client

    return get_client()


@contextlib.contextmanager
def seceded() -> Iterator[None]:
    """Leave the worker's thread pool while waiting on an inner run (nothing outside a task)."""
    if not in_task():
        yield
        return
    from distributed import rejoin, secede

    secede()
    try:
        yield
    finally:
        rejoin()


def replay_output(output: Any) -> None:
    """After an inner run of ``distribute(...)`` in an item: its items' output, written into the
    outer item's own (so it reaches the notebook), each line marked with the inner item."""
    import sys

    while output:
        record = output.popleft()
        if record.text:
            stream = sys.stdout if record.stream == "stdout" else sys.stderr
            prefix = f"[inner item {record.index}] "
            stream.write("".join(prefix + line for line in record.text.splitlines(keepends=True)))


def prepare(source: str | None) -> None:
    """On a worker, before a cell runs: a cell that calls the magics gets a ``get_ipython``.

    The one place where the engine reaches up to the magics (by import path, on workers only):
    a magic inside an item must parse and run as it does in the notebook.
    """
    if source and "get_ipython" in source and not hasattr(builtins, "get_ipython") and dedicated_worker_process():
        item_shell = importlib.import_module("ipydistribute.kernel_magics.item_shell")
        builtins.get_ipython = item_shell.get_ipython  # type: ignore[attr-defined]


__all__ = ["dedicated_worker_process", "in_task", "prepare", "replay_output", "seceded", "task_client"]
