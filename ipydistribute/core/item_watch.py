"""Worker side of stopping items: which threads run which run's batches, how to stop them,
and the ``--timeout`` watchdog.

Dask cannot stop a running task: ``client.cancel(force=True)`` releases the key and the
worker thread runs the item to its end (a 60 s item kept its worker 56 s after Ctrl-C). Here
``run_batch`` registers its thread for the duration of its item loop (:class:`watching`), and
a stop or a timeout raises an exception *in that thread* with CPython's
``PyThreadState_SetAsyncExc``. Python code stops at its next bytecode; C code (``time.sleep``,
a long numpy call) only when it returns, so what does not leave its item within a grace
period is reported as stuck, and its worker process is restarted through the nanny.

Runs in worker processes; imports only the standard library, Dask and the engine's wire types
and worker context (task.run_batch comes in through ``watching``). One watchdog thread per
process polls the running batches every 0.1 s: an item costs nothing for being watched (the item
running is read off the batch's cursor).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ItemFailure, safe_repr
from .wire import Batch, BatchResult
from .worker_output import current_worker

#: How often the watchdog looks at the running items: the precision of a timeout.
POLL_SECONDS = 0.1
#: How often a stop or a timeout is raised again in a thread that has not left its item
#: (user code may catch it: ``except BaseException`` or ``except Exception``).
RESEND_SECONDS = 0.2
_STOPPED_TOKENS_KEPT = 64


class ItemStopped(BaseException):
    """Raised inside a running item when its run is stopped (Ctrl-C, ``Run.cancel()``, Stop).

    A ``BaseException`` that is neither ``Exception`` nor ``KeyboardInterrupt``: ``run_batch``
    does not turn it into an item failure, and :class:`watching` swallows it, so the task just
    ends (its key was already released by the cancel).
    """


class ItemTimeout(TimeoutError):
    """Raised inside an item that ran longer than ``--timeout``: it becomes the item's failure.

    Raised asynchronously, so Python creates it without arguments in the item's own thread;
    the message the watchdog prepared for that thread is picked up here.
    """

    def __init__(self, *args: object):
        if not args:
            args = (_timeout_messages.pop(threading.get_ident(), "the item ran longer than --timeout"),)
        super().__init__(*args)


@dataclass(eq=False)
class _Watched:
    """One thread running one batch of one run."""

    token: str
    payload: Any  # wire.Payload of the run
    ident: int
    cursor: Any  # task._Cursor: which item of the batch runs now (None for a reduce task)
    start: int  # index of the batch's first item in the input
    items: Sequence[Any]
    worker_address: str
    dask_worker: Any
    timeout: float | None
    on_error: str
    begun: float  # when the batch started here (monotonic)
    offset: int = 0  # the item the watchdog saw running ...
    since: float = 0.0  # ... and since when (monotonic)
    sent: bool = False  # an asynchronous exception was set for this thread
    timed_out_at: float | None = None  # when the item running now was told it timed out
    given_up: bool = False  # the item was stuck in C code past the grace: its worker restarts
    rest: _Rest | None = None  # set when this thread runs the rest of a batch whose item was stuck
    # task.run_batch, passed in (task imports this module): runs the rest of a batch item by item
    run_batch: Callable[[Batch, Any], Any] | None = None

    def index(self, offset: int | None = None) -> int | None:
        if self.cursor is None:  # a reduce task: no item
            return None
        return self.start + (self.cursor.offset() if offset is None else offset)

    def item_repr(self, offset: int) -> str:
        if self.cursor is None:
            return "a reduce task"
        return safe_repr(self.items[offset], 60) if 0 <= offset < len(self.items) else ""


_lock = threading.Lock()  # guards the registry, and every raise into a thread against its leaving
_running: dict[int, _Watched] = {}  # thread ident -> what it runs
_stopped_tokens: OrderedDict[str, None] = OrderedDict()  # runs stopped on this worker
_timeout_messages: dict[int, str] = {}
_local = threading.local()  # .rest: the _Rest this thread runs, if it is one
_watchdog: threading.Thread | None = None


def _raise_in(ident: int, exc_type: type[BaseException] | None) -> None:
    """Set (or with None, clear) the exception a thread raises at its next bytecode."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc_type) if exc_type is not None else None)


def _send(entry: _Watched, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in the entry's thread; the caller holds ``_lock`` and has checked
    that the thread is still registered (so the exception lands inside :class:`watching`)."""
    _raise_in(entry.ident, exc_type)
    entry.sent = True


@dataclass(eq=False)
class watching:
    """Context manager around ``run_batch``'s item loop (and a reduce task's reducer): registers
    the thread as running the batch, so that a stop or a timeout can reach the item running in it.

    On exit it unregisters the thread under the lock and clears an exception sent but not yet
    raised, so nothing is raised in the thread once it has left the loop. A stop that ended the
    item loop is swallowed (the batch returns what it has, and Dask drops it: its key was
    cancelled); one that ended a reducer propagates, as the reduce task has no value to return,
    and so does one for a batch that starts after its run was stopped (the task fails at once,
    quietly, its key being cancelled).
    With ``cursor=None`` it watches a reduce task: no items, no timeout.
    """

    payload: Any
    cursor: Any = None
    start: int = 0
    items: Sequence[Any] = ()
    worker_address: str = ""
    run_batch: Callable[[Batch, Any], Any] | None = None  # task.run_batch (task imports this module)

    def __enter__(self) -> None:
        ident = threading.get_ident()
        timeout = self.payload.timeout if self.cursor is not None else None
        now = time.monotonic()
        entry = _Watched(self.payload.token, self.payload, ident, self.cursor, self.start, self.items,
                         self.worker_address, current_worker(), timeout, self.payload.on_error, begun=now,
                         since=now, rest=getattr(_local, "rest", None), run_batch=self.run_batch)
        self.ident = ident
        with _lock:
            stopped = entry.token in _stopped_tokens
            if not stopped:
                _running[ident] = entry
        if stopped:  # the run was stopped before this batch started here: the task ends at once
            raise ItemStopped(f"the run {entry.token} was stopped")
        if timeout is not None:
            _ensure_watchdog()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        while True:
            try:
                with _lock:
                    entry = _running.pop(self.ident, None)
                    if entry is not None and entry.sent:
                        _raise_in(self.ident, None)
                break
            except (ItemStopped, ItemTimeout):  # sent just before the thread left: nothing to stop
                continue
        _timeout_messages.pop(self.ident, None)
        return exc_type is not None and issubclass(exc_type, ItemStopped) and self.cursor is not None


class QuietRestart(logging.Filter):
    """Drops the warnings that a restart asked for by ipydistribute makes Dask log (they would
    land in the cell, which already says which worker was restarted), for a while after asking."""

    def __init__(self, logger: str, *starts: str):
        super().__init__()
        self.logger = logger
        self.starts = starts
        self.until = 0.0

    def arm(self, seconds: float = 10.0) -> None:
        log = logging.getLogger(self.logger)
        if self not in log.filters:
            log.addFilter(self)
        self.until = time.monotonic() + seconds

    def filter(self, record: logging.LogRecord) -> bool:
        return time.monotonic() > self.until or not str(record.msg).startswith(self.starts)


#: the worker closing under the nanny's kill cancels the stuck task's coroutine, and says so
_quiet_worker_close = QuietRestart("distributed.worker.state_machine", "Async instruction for")


# --- stopping a run's items (called on every worker through Client.run) --------------------------


async def stop_run_items(token: str, grace: float, dask_worker: Any = None) -> dict[str, Any]:
    """Stop the items of run ``token`` running on this worker; wait up to ``grace`` seconds for
    their threads to leave them. Runs on the worker's event loop (``Client.run`` awaits it).

    Returns ``{"worker", "pid", "nanny", "interrupted": [(index, item)], "stuck": [(index, item)]}``:
    the items that left within the grace, and those still running (in C code, or catching
    ``BaseException``); a reduce task is ``(None, "a reduce task")``. Batches of the run that
    start here later stop at once.
    """
    await _hear_of_the_cancel(dask_worker, token)
    begun = time.monotonic()
    with _lock:
        _stopped_tokens[token] = None
        while len(_stopped_tokens) > _STOPPED_TOKENS_KEPT:
            _stopped_tokens.popitem(last=False)
        targets = [(entry, entry.cursor.offset() if entry.cursor is not None else 0)
                   for entry in _running.values() if entry.token == token]
        for entry, _ in targets:
            _send(entry, ItemStopped)
    left = list(targets)
    resend = begun + RESEND_SECONDS
    while left and time.monotonic() < begun + grace:
        await asyncio.sleep(0.02)
        with _lock:
            left = [(entry, offset) for entry, offset in left if _running.get(entry.ident) is entry]
            if time.monotonic() >= resend:
                for entry, _ in left:
                    _send(entry, ItemStopped)
                resend += RESEND_SECONDS
    stuck = {id(entry) for entry, _ in left}
    if stuck and getattr(dask_worker, "nanny", None):
        _quiet_worker_close.arm()  # the kernel has this process restarted next
    address = getattr(dask_worker, "address", "")
    return {
        "worker": address,
        "pid": os.getpid(),
        "nanny": getattr(dask_worker, "nanny", None),
        "interrupted": [(e.index(o), e.item_repr(o)) for e, o in targets if id(e) not in stuck],
        "stuck": [(e.index(o), e.item_repr(o)) for e, o in targets if id(e) in stuck],
    }


async def _hear_of_the_cancel(dask_worker: Any, token: str, wait: float = 0.2) -> None:
    """The kernel cancels the run's keys, then asks for the stop; the two travel on different
    connections. Let the cancel arrive first (up to ``wait``), so that a stopped task, and a queued
    one that would start in its place, ends as cancelled, which Dask drops quietly, not as a
    failure it logs (into the cell, for an embedded cluster)."""
    if dask_worker is None:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with _lock:
            idents = [entry.ident for entry in _running.values() if entry.token == token]
        keys = [dask_worker.active_threads.get(ident) for ident in idents]
        states = [getattr(dask_worker.state.tasks.get(key), "state", None) for key in keys if key is not None]
        if "executing" not in states:
            return
        await asyncio.sleep(0.005)


# --- the --timeout watchdog -----------------------------------------------------------------------


def _ensure_watchdog() -> None:
    global _watchdog
    with _lock:
        if _watchdog is None or not _watchdog.is_alive():
            _watchdog = threading.Thread(target=_watch_loop, name="ipydistribute-timeout", daemon=True)
            _watchdog.start()


def _watch_loop() -> None:
    from . import config

    grace = config.seconds("stop-grace")
    while True:
        time.sleep(POLL_SECONDS)
        with _lock:
            entries = [entry for entry in _running.values() if entry.timeout is not None]
        now = time.monotonic()
        for entry in entries:
            _check(entry, now, grace)


def _check(entry: _Watched, now: float, grace: float) -> None:
    """Raise a timeout in an item running past its limit; give up on it after ``grace`` more."""
    assert entry.timeout is not None
    offset = entry.cursor.offset()
    if offset != entry.offset:  # the batch moved on to another item since the last look
        entry.offset, entry.since, entry.timed_out_at = offset, now, None
        return
    ran = now - entry.since
    if ran < entry.timeout or entry.given_up:
        return
    with _lock:
        if _running.get(entry.ident) is not entry or entry.cursor.offset() != offset:
            return
        if entry.timed_out_at is None:
            entry.timed_out_at = now
        elif now - entry.timed_out_at < RESEND_SECONDS:
            return
        _timeout_messages[entry.ident] = _timeout_message(entry, offset, ran)
        _send(entry, ItemTimeout)
    if now - entry.timed_out_at >= grace and entry.dask_worker is not None and entry.dask_worker.nanny:
        # Still there: in C code (time.sleep, a long library call). Only a new process frees it.
        entry.given_up = True
        if entry.rest is not None:  # an item of a batch's rest: the thread finishing that batch takes over
            entry.rest.stuck = (entry.rest.current, ran)
            entry.rest.ended.set()
        else:
            threading.Thread(target=_give_up, args=(entry, offset, ran), name="ipydistribute-give-up",
                             daemon=True).start()


def _timeout_message(entry: _Watched, offset: int, ran: float, stuck: bool = False) -> str:
    what = f"item #{entry.index(offset)} ({entry.item_repr(offset)})"
    limit = f"{entry.timeout:g}"
    if stuck:
        return (f"{what} ran longer than --timeout {limit} s: still running after {ran:.1f} s on "
                f"{entry.worker_address} (in C code, which cannot be interrupted), so that worker's "
                "process was restarted")
    return f"{what} ran longer than --timeout {limit} s: stopped after {ran:.1f} s on {entry.worker_address}"


def _timeout_failure(entry: _Watched, offset: int, ran: float) -> ItemFailure:
    error = ItemTimeout(_timeout_message(entry, offset, ran, stuck=True))
    return ItemFailure.from_exception(error, entry.index(offset), entry.item_repr(offset), entry.worker_address, ())


class _Rest(threading.Thread):
    """Runs the items of a batch after its stuck one, one by one, in a thread of its own (the
    batch's thread stays stuck until its process restarts); stops early where one of them is
    stuck too (``stuck``: its offset and seconds), and says so through ``ended``."""

    def __init__(self, entry: _Watched, first: int):
        super().__init__(name="ipydistribute-rest-of-batch", daemon=True)
        self.entry = entry
        self.current = first
        self.values: list[Any] = []
        self.failures: list[ItemFailure] = []
        self.stuck: tuple[int, float] | None = None
        self.ended = threading.Event()

    def run(self) -> None:
        run_batch = self.entry.run_batch
        assert run_batch is not None  # a watched batch (not a reduce task) carries it
        _local.rest = self
        _enter_worker_context(self.entry.dask_worker)
        entry = self.entry
        try:
            for offset in range(self.current, len(entry.items)):
                self.current = offset
                result = run_batch(Batch(entry.start + offset, [entry.items[offset]]), entry.payload)
                if self.stuck is not None:  # given up while it ran: its place is already taken
                    return
                self.values.extend(result.values)  # type: ignore[union-attr]
                self.failures.extend(result.failures)  # type: ignore[union-attr]
        finally:
            self.ended.set()


def _enter_worker_context(worker: Any) -> None:
    """Make ``get_worker()`` work in this thread (prints and events go where the task's would)."""
    try:
        from distributed.worker import _worker_cvar

        _worker_cvar.set(worker)
    except ImportError:  # a Dask without it: output of the rest goes to the worker's own stdout
        pass


def _give_up(entry: _Watched, offset: int, ran: float) -> None:
    """In a thread of its own, for an item stuck in C code past its timeout and grace: finish the
    batch without it (under --on-error skip or collect), then end its task with the timeout
    failure and the batch's result, and have the nanny restart the process."""
    failure = _timeout_failure(entry, offset, ran)
    result = None if entry.on_error == "raise" or entry.payload.reducer is not None else \
        _finish_batch(entry, offset, failure)
    entry.dask_worker.loop.add_callback(_fail_and_restart, entry, failure, result)


def _finish_batch(entry: _Watched, offset: int, failure: ItemFailure) -> Any:
    """The batch's result: the values before the stuck item, its failure, the items after it."""
    collect = entry.on_error == "collect"
    values = list(entry.cursor.values)
    failures = [v for v in values if isinstance(v, ItemFailure)] + [failure]
    if collect:
        values.append(failure)
    first = offset + 1
    while first < len(entry.items):
        rest = _Rest(entry, first)
        rest.start()
        rest.ended.wait()
        values.extend(rest.values)
        failures.extend(rest.failures)
        if rest.stuck is None:
            break
        stuck, ran = rest.stuck
        failures.append(_timeout_failure(entry, stuck, ran))
        if collect:
            values.append(failures[-1])
        first = stuck + 1
    return BatchResult(entry.start, values, failures, time.monotonic() - entry.begun, entry.worker_address)


async def _fail_and_restart(entry: _Watched, failure: ItemFailure, result: Any) -> None:
    """On the worker's event loop: end the stuck item's task with its timeout failure (so the
    run sees a timed-out item, not a lost worker), then have the nanny restart the process."""
    from distributed.worker_state_machine import ExecuteFailureEvent

    from .errors import TaskCutShort

    worker = entry.dask_worker
    _quiet_worker_close.arm()
    key = worker.active_threads.get(entry.ident)
    ts = worker.state.tasks.get(key) if key is not None else None
    if ts is not None and ts.state == "executing":
        stimulus = f"ipydistribute-timeout-{time.time()}"
        worker.handle_stimulus(ExecuteFailureEvent.from_exception(
            TaskCutShort(failure, result, worker.nanny), key=key, run_id=ts.run_id, start=None, stop=None,
            stimulus_id=stimulus))
        await asyncio.sleep(0.2)  # let the failure reach the scheduler before the process goes
    await restart_worker(worker, "ipydistribute-timeout")


async def restart_worker(worker: Any, reason: str) -> None:
    """Have this worker's process restarted by its nanny."""
    await kill_through_nanny(worker.nanny, worker.connection_args, reason)


async def kill_through_nanny(nanny_address: str, connection_args: dict[str, Any], reason: str) -> None:
    """Ask a worker's nanny to kill its process at once; the nanny starts a new one.

    The nanny waits 0.8 x its timeout for a graceful close, which a thread in C code blocks:
    0.5 s here (the scheduler's own restart waits 4 s). Measured: the process was gone after
    0.42 s and a new worker had joined 1.3 s after the request.
    """
    from distributed.core import rpc

    async with rpc(nanny_address, connection_args=connection_args) as nanny:
        await nanny.kill(timeout=0.5, reason=reason)
