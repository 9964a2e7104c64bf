"""Hearing that a run's tasks ended: from the messages the scheduler sends the client.

Dask's client learns that a key is in memory, erred or was cancelled from its report stream
and handles each message in ``Client._stream_handlers``. A run needs a call for each of its
futures that ends; Dask's ``Future.add_done_callback`` crosses to a thread pool per future, and
a coroutine per future that awaits its state (the form used before) kept four coroutines, a
task, an event and its waiter alive per task: for 2,000 one-item tasks about 20,000 objects
for the garbage collector, which then ran a full collection (150-200 ms) in most such cells.
Here the client's handlers of those messages are followed, once per client, by a look-up of
the message's keys among the futures being watched: no object per future but its entry.

A future can also end without a message: cancelled by this client, or with the client closed.
:func:`sweep` reports those; the run calls it while it waits (``Run.pump``).

A reduction's leaves need no future once a reduce task consumes them: the reduce task keeps them
on the scheduler, and an error in one reaches the run through it. When the scheduler runs in
this process, the run lets go of those futures and asks the scheduler a few times a second which
leaves are done (:func:`in_memory`), for its progress: holding 2,000 one-item leaves and hearing
of each cost a `--batch 1` cell about 10% of its time.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from distributed import Client, Future

from .on_scheduler import ask_scheduler, in_process_scheduler

#: The report-stream messages after which a watched future may have ended.
_ENDING_MESSAGES = ("key-in-memory", "task-erred", "cancelled-keys", "restart")

Callback = Callable[[Future], None]
_logger = logging.getLogger(__name__)


class _Watch:
    """The futures of one client being watched; touched only on the client's event loop."""

    def __init__(self, client: Client):
        self.watched: dict[Hashable, tuple[Future, Callback]] = {}
        handlers = client._stream_handlers
        for op in _ENDING_MESSAGES:
            handlers[op] = self._followed(handlers[op], op)

    def _followed(self, handler: Callable[..., Any], op: str) -> Callable[..., Any]:
        def followed(**msg: Any) -> Any:
            result = handler(**msg)  # Dask's own handling first: it sets the future's status
            if self.watched:
                if op == "restart":
                    keys: Iterable[Hashable] = list(self.watched)
                elif op == "cancelled-keys":
                    keys = msg.get("keys") or ()
                else:
                    keys = (msg.get("key"),)
                self._report(keys)
            return result

        return followed

    def _report(self, keys: Iterable[Hashable]) -> None:
        for key in keys:
            entry = self.watched.get(key)
            if entry is not None and entry[0].status != "pending":  # lost or retried: still running
                del self.watched[key]
                try:
                    entry[1](entry[0])
                except Exception:  # inside Dask's handler: one run's failing callback must not
                    _logger.exception("reporting the end of %s failed", key)  # cost the others theirs

    def add(self, futures: list[Future], callback: Callback) -> None:
        for future in futures:
            self.watched[future.key] = (future, callback)
        self._report([future.key for future in futures])  # ended before they were watched

    def sweep(self) -> None:
        self._report(list(self.watched))

    def forget(self, keys: list[Hashable]) -> None:
        for key in keys:
            self.watched.pop(key, None)


_watches: weakref.WeakKeyDictionary[Client, _Watch] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _watch_of(client: Client) -> _Watch:
    with _lock:
        watch = _watches.get(client)
        if watch is None:
            watch = _watches[client] = _Watch(client)
        return watch


def when_ended(client: Client, futures: list[Future], callback: Callback) -> None:
    """Call ``callback(future)`` on the client's event loop once each of ``futures`` has ended
    (finished, erred or cancelled). Any thread; one hop to the loop for all of them."""
    if futures:
        _on_loop(client, _watch_of(client).add, futures, callback)


def sweep(client: Client) -> None:
    """Report the watched futures that ended without a message (cancelled here, client closed)."""
    _on_loop(client, _watch_of(client).sweep)


def forget(client: Client, keys: list[Hashable]) -> None:
    """Stop watching ``keys`` (their run is over)."""
    if keys:
        _on_loop(client, _watch_of(client).forget, keys)


def _on_loop(client: Client, fn: Callable[..., None], *args: Any) -> None:
    """``fn(*args)`` on the client's event loop; here and now once that loop has stopped (a
    closed client's loop drops callbacks silently, and nothing else touches the watch then)."""
    loop = getattr(client.loop, "asyncio_loop", None)
    if loop is not None and (loop.is_closed() or not loop.is_running()):
        fn(*args)
    else:
        client.loop.add_callback(fn, *args)


def in_memory(client: Client, keys: list[Hashable]) -> list[Hashable]:
    """Those of ``keys`` whose value is in memory, as the client's scheduler in this process says;
    none while it is not running here (closing: the reduce tasks' ends account for the leaves)."""
    if in_process_scheduler(client) is None:
        return []
    found: list[Hashable] = ask_scheduler(client, _in_memory_on_scheduler, keys=keys)
    return found


def _in_memory_on_scheduler(keys: list[Hashable], dask_scheduler: Any = None) -> list[Hashable]:
    tasks = dask_scheduler.tasks
    return [key for key in keys if (task := tasks.get(key)) is not None and task.state == "memory"]
