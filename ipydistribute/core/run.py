"""A Run: the tasks of one distributed cell on the cluster, its progress, its result.

A driver thread submits the batches (all at once for a sized input, a bounded number in flight
for a generator or a reduction of large partials), lays out the tree reduction as batches are
submitted, brings map values home as their tasks finish and assembles the result. The caller
waits on an event, so a kernel interrupt reaches it at once and :meth:`Run.cancel` removes every
task of the run from the cluster.
"""

from __future__ import annotations

import collections
import functools
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import cloudpickle
from distributed import Client, Future
from distributed.spans import span

from . import diagnose, ended, plan
from .checkpoint import CheckpointStore, Resume, open_for_run
from .collect import Collector
from .errors import CellError, ItemError, ItemFailure, RunLostError, SpecError, TaskCutShort
from .events import Inbox, OutputRecord, router
from .forgetting import wait_forgotten
from .kept import KeptResults
from .kinds import Mode, RunState
from .ledger import Ledger
from .mapping import MapSubmission
from .on_scheduler import in_process_scheduler
from .options import RunOptions
from .reduction import TreeReduction
from .replay import attach_replay
from .stopping import StopReport, expect_restart, stop_tasks, wait_for_restarts
from .submit import Submitter
from .wire import Batch, Payload


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run, for views."""

    label: str
    token: str
    state: RunState
    items_total: int | None
    items_done: int
    tasks_submitted: int
    tasks_done: int
    tasks_failed: int
    elapsed: float


#: How long the driver lets ended tasks gather while more than 2 x threads are still in flight
#: (the one pacing rule of every wait of the driver: the end of the run, room under a bound, a probe).
GATHER_SECONDS = 0.01
#: How often a waiting driver looks for its tasks that ended without a message (core/ended.py).
SWEEP_SECONDS = 1.0
#: How often it asks the scheduler in this process which handed-over leaves are done (progress).
ASK_LEAVES_SECONDS = 0.1


class Run:
    """The tasks of one distributed cell on the cluster: the handle the user holds.

    Created by :func:`start_run`; :meth:`result` waits for and returns the value,
    :meth:`as_completed` yields values as items finish, :meth:`cancel` stops the run.
    The work is split along the run's :class:`~.ledger.Ledger`: a :class:`~.submit.Submitter`
    puts tasks on the cluster, :class:`~.mapping.MapSubmission` decides batches and pace,
    :class:`~.reduction.TreeReduction` lays out the reduction, a :class:`~.collect.Collector`
    brings values home, and :mod:`.diagnose` explains lost tasks.
    """

    def __init__(self, client: Client, payload: Payload, items: Any, options: RunOptions,
                 mode: Mode, threads: int, workers: list[str],
                 checkpoint: tuple[CheckpointStore, Resume] | None = None):
        self.client = client
        self.payload = payload
        self.options = options
        self.mode = mode  # map, single, all
        self.label = payload.label
        self.token = payload.token
        self.threads = threads
        self.workers = workers
        self._items = items
        self.items_total: int | None = (
            len(workers) if mode == "all" else 1 if mode == "single"
            else len(items) if isinstance(items, KeptResults) else plan.sized_length(items)
        )
        self.state: RunState = "pending"
        self.started = time.time()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.value: Any = None
        self.output: collections.deque[OutputRecord] = collections.deque()
        self._inbox = Inbox()
        self.ledger = Ledger()
        self.stopped = threading.Event()
        self._done = threading.Event()
        self._cond = threading.Condition()
        self._ended_futures: collections.deque[Future] = collections.deque()
        self._next_sweep = time.monotonic() + SWEEP_SECONDS
        self._asked_leaves: set[Hashable] = set()  # leaves followed on the scheduler, not yet done
        self._next_ask = 0.0
        self._done_callbacks: list[Callable[[Run], None]] = []
        streams = mode in ("map", "single") and payload.reducer is None and not options.keep
        self.submitter = Submitter(client, payload, options, self.ledger, workers, self._on_task_done, self.stopped,
                                   holds_map_futures=mode == "all" or (options.keep and payload.reducer is None))
        self.tree = TreeReduction(self.submitter, options.fan_in) if payload.reducer is not None else None
        self.mapping = MapSubmission(self, self.submitter, options, self.tree)
        self.collector = Collector(self.submitter, self.ledger, options, self.label, streams=streams,
                                   checkpoint=checkpoint, while_slow=self._check_workers_remain)
        self._resumed = checkpoint[1] if checkpoint is not None else None
        if self._resumed is not None:
            self.ledger.items_done = len(self._resumed.done)
        self.stop_report: StopReport | None = None  # what a stop interrupted and restarted
        self.span_id: str | None = None  # the Dask span of the run's tasks (see core/timing.py)
        self._driver = threading.Thread(target=self._drive, name=f"ipydistribute-run-{self.label}", daemon=True)

    # --- public -------------------------------------------------------------------------------

    def start(self) -> Run:
        if self.payload.topic:
            self._inbox = router.open(self.client, self.token)
            self.output = self._inbox.output
            self.collector.sent = self._inbox.results
            weakref.finalize(self, router.close, self.token)
        self.state = "running"
        self._driver.start()
        return self

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run ends; interruptible (waits in short steps)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            step = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if step <= 0:
                return False
            self._done.wait(step)
        return True

    def result(self, timeout: float | None = None) -> Any:
        """The value of the run; raises the run's error. Ctrl-C while waiting cancels the run."""
        try:
            if not self.wait(timeout):
                raise TimeoutError(f"{self.label} is still running after {timeout} s")
        except KeyboardInterrupt:
            self.cancel()
            raise
        if self.error is not None:
            raise self.error
        return self.value

    def as_completed(self) -> Iterator[tuple[int, Any]]:
        """``(index, value)`` pairs as items finish, in the order they finish; raises the run's
        error once the values that arrived before it have been yielded."""
        if not self.collector.streams:
            raise SpecError("as_completed() yields the values of a map run as they come home: a run with "
                            "--reduce, --keep or --all has no such values; use result()")
        if self._resumed is not None:
            yield from sorted(self._resumed.done.items())
        for entry in self.ledger.arrivals(self._done):
            yield from entry.indexed_values()
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        """Stop submitting and remove every task of this run from the cluster."""
        if self._done.is_set():
            return
        self.stopped.set()
        self._stop_tasks()
        with self._cond:
            self._cond.notify_all()
        if not self._driver.is_alive():
            self._finish("cancelled")

    def add_done_callback(self, fn: Callable[[Run], None]) -> None:
        """Call ``fn(run)`` once the run has ended (at once if it has), from the driver thread."""
        with self._cond:
            if not self._done.is_set():
                self._done_callbacks.append(fn)
                return
        fn(self)

    @property
    def warnings(self) -> list[str]:
        return self.collector.warnings

    @property
    def failures(self) -> list[ItemFailure]:
        return self.collector.failures

    @property
    def batch_size(self) -> int | None:
        """Items per task, once chosen."""
        return self.mapping.batch_size

    @property
    def max_in_flight(self) -> int | None:
        """The bound on map tasks in flight, when the run has one."""
        return self.mapping.max_in_flight

    def progress(self) -> Progress:
        end = self.ended if self.ended is not None else time.time()
        ledger = self.ledger
        return Progress(self.label, self.token, self.state, self.items_total, ledger.items_done,
                        ledger.tasks_submitted, ledger.tasks_done, ledger.tasks_failed, end - self.started)

    def __repr__(self) -> str:
        p = self.progress()
        total = "?" if p.items_total is None else p.items_total
        return f"<Run {self.label}: {p.state}, {p.items_done}/{total} items, {p.elapsed:.1f} s>"

    # --- driver -------------------------------------------------------------------------------

    def _drive(self) -> None:
        # Every task of the run in one Dask span: Dask's account of its threads and time.
        with span(self.label) as self.span_id:
            self._drive_in_span()

    def _drive_in_span(self) -> None:
        try:
            self.submitter.prepare_payload()
            if self.mode == "all":
                self.submitter.all_workers()
            elif self.mode == "single":
                self.submitter.batches([Batch(0, [None], sends_result=True)], role="single")
            elif self._resumed is not None:
                self.mapping.run(self._items, plan.open_ranges(len(self._resumed.hashes), self._resumed.done))
            else:
                self.mapping.run(self._items)
            self._wait_for_tasks()
            if self.stopped.is_set():
                raise KeyboardInterrupt
            # no local name for the root: _finish lets go of it (core/forgetting.py)
            try:
                self.value = self.collector.value(self.mode, self.tree.root if self.tree is not None else None,
                                                  self.payload.reducer,
                                                  self.tree.home_leaves if self.tree is not None else [])
            except ItemError as exc:  # the reducer, folding the last partials at home
                raise self._cell_error(exc.failure) from None
            if self.failures:  # skipped or collected: for %debug and .rerun()
                attach_replay(self.failures, self.client, self.payload, self._items, self.mode)
            self._finish("finished")
        except KeyboardInterrupt:
            self._finish("cancelled", RunLostError(f"{self.label} was cancelled"))
        except BaseException as exc:
            self.stopped.set()
            self.submitter.cancel_all()
            self._finish("error", diagnose.connection_lost(self.client, self.label, exc) or exc)

    def probe_timing(self, start: int) -> tuple[float, int] | None:
        return self._inbox.timings.get(start)

    def follow_leaves_on_scheduler(self) -> None:
        """A reduction of small partials over a sized input: with the scheduler in this process,
        leaves are handed over to their reduce tasks (see core/ended.py)."""
        if self.tree is not None and in_process_scheduler(self.client) is not None:
            self.tree.hand_over = self._hand_over_leaves

    def _hand_over_leaves(self, keys: list[Hashable]) -> None:
        with self._cond:
            self._asked_leaves.update(keys)
        ended.forget(self.client, keys)
        self.submitter.release(keys)

    def _ask_leaves(self) -> None:
        if not self._asked_leaves or time.monotonic() < self._next_ask:
            return
        self._next_ask = time.monotonic() + ASK_LEAVES_SECONDS
        with self._cond:
            keys = list(self._asked_leaves)
        self._leaves_done(ended.in_memory(self.client, keys))

    def _leaves_done(self, keys: list[Hashable]) -> None:
        with self._cond:
            for key in keys:
                if key in self._asked_leaves:
                    self._asked_leaves.discard(key)
                    self.ledger.ended(key, "finished")

    def _on_task_done(self, future: Future) -> None:
        with self._cond:
            if self.ended is not None:  # a cancelled task reporting late: nothing to account for
                return
            self._ended_futures.append(future)
            if len(self._ended_futures) == 1:  # the driver takes them all when it wakes
                self._cond.notify_all()

    def pump(self, timeout: float) -> None:
        """Handle the tasks that ended (waiting up to ``timeout`` for one); raises the run's error.

        No future is a local of this frame when it raises: the error's traceback keeps its frames,
        and a CellError kept as the notebook's last error would keep those tasks on the cluster."""
        self._account_all(self._take_ended(timeout))
        self._ask_leaves()
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_SECONDS
            ended.sweep(self.client)
        if self.error is not None:
            raise self.error
        if not self.stopped.is_set():
            self.collector.fetch()

    def _take_ended(self, timeout: float) -> list[Future]:
        with self._cond:
            if not self._ended_futures and timeout > 0:
                self._cond.wait(timeout)
            # (leaves handed over to their reduce tasks send no end to gather)
            reporting = self.ledger.in_flight() - len(self._asked_leaves)
            gather = bool(self._ended_futures) and reporting > 2 * self.threads
        if gather:
            # Far from the end: let tasks that end meanwhile gather. Waking for each one was a
            # fifth of the scheduler thread's time for 2,000 one-item tasks (the wake-up passes
            # the GIL to this thread and back).
            self.stopped.wait(GATHER_SECONDS)
        with self._cond:
            # Finished tasks first: their values come home (and into a checkpoint) even when a
            # failure among the same ended tasks stops the run.
            ended = sorted(self._ended_futures, key=lambda f: f.status != "finished")
            self._ended_futures.clear()
        return ended

    def _account_all(self, ended: list[Future]) -> None:
        for future in ended:
            self._account(future)

    def _account(self, future: Future) -> None:
        status = future.status
        entry = self.ledger.ended(future.key, status)
        if self.error is not None or self.stopped.is_set() or entry is None:
            return
        if status == "finished":
            if entry.role in ("map", "single"):
                self.collector.finished(future)
            elif entry.role == "reduce" and self.tree is not None:
                consumed = self.tree.consumed_by(future.key)
                self._leaves_done(consumed)
                self.submitter.release(consumed)
        elif status == "error":
            self._on_task_error(future)
        elif status == "cancelled":
            self.error = diagnose.cancelled_error(self.client, self.label)
            self.stopped.set()
            self.submitter.cancel_all()

    def _stop_tasks(self) -> None:
        """Cancel the run's tasks and stop its items running on workers (restarting a worker
        whose item is stuck in C code)."""
        self.stop_report = stop_tasks(self.client, self.token, list(self.submitter.futures.values()),
                                      label=self.label)

    def _on_task_error(self, future: Future) -> None:
        try:  # keep what finished before the failure (a checkpoint stores it)
            self.collector.fetch(force=True)
        except Exception:  # the failure is what the user needs to see
            pass
        exc = future.exception()
        if isinstance(exc, TaskCutShort) and exc.nanny:
            expect_restart(self.client, exc.failure.worker, exc.nanny)
        if isinstance(exc, TaskCutShort) and exc.result is not None and self.payload.reducer is None:
            # an item stuck past --timeout under --on-error skip/collect: its worker restarts, so
            # the batch's result came back with the error (nothing can stay on that worker)
            self.collector.salvage(future.key, exc.result)
            return
        if isinstance(exc, ItemError):
            self.error = self._cell_error(exc.failure)
        else:
            self.error = diagnose.lost_error(self.client, self.label, future.key, self.ledger.get(future.key), exc)
        self.stopped.set()
        self._stop_tasks()  # the failed run's other running items would keep their workers busy

    def _cell_error(self, failure: ItemFailure) -> CellError:
        self.failures.append(failure)
        attach_replay([failure], self.client, self.payload, self._items, self.mode)
        return CellError(self.label, self.failures, total=max(1, self.ledger.tasks_failed))

    def _wait_for_tasks(self) -> None:
        restricted = bool(self.options.workers or self.options.all_resources())
        next_check = time.monotonic() + 2
        while True:
            self.pump(0.1)
            if restricted and time.monotonic() > next_check:
                self._check_workers_remain()
                next_check = time.monotonic() + 2
            if self.stopped.is_set():
                return
            with self._cond:
                if self.ledger.in_flight() <= 0 and not self._ended_futures:
                    return

    def _check_workers_remain(self) -> None:
        """Tasks restricted to workers (or resources) that no longer exist would wait forever."""
        if not (self.options.workers or self.options.all_resources()):
            return
        try:
            diagnose.eligible_workers(self.client, self.options)
        except SpecError as exc:
            raise diagnose.workers_gone_error(self.label, exc, self.ledger.open_items()) from None

    def _finish(self, state: RunState, error: BaseException | None = None) -> None:
        with self._cond:
            if self._done.is_set():
                return
            if error is not None and self.error is None:
                self.error = error
            self.state = state
            self.ended = time.time()
            callbacks, self._done_callbacks = self._done_callbacks, []
            self._ended_futures.clear()
        if state != "finished":
            self.ledger.cancel_open()
        self.submitter.end_report_hold()
        self.collector.close()
        if not (self.options.keep and state == "finished"):
            self.submitter.clear()
            if self.tree is not None:
                self.tree.release()
            if state == "finished":
                wait_forgotten(self.client, self.token, self.ledger.tasks_submitted)
        self._done.set()
        self.ledger.wake()
        for fn in callbacks:
            fn(self)


@functools.cache
def _not_associative() -> dict[Any, str]:
    import statistics

    known: dict[Any, str] = {getattr(statistics, n): f"statistics.{n}" for n in (
        "mean", "fmean", "median", "median_low", "median_high", "median_grouped", "mode",
        "geometric_mean", "harmonic_mean", "stdev", "pstdev", "variance", "pvariance")}
    known[len] = "len"
    try:
        import numpy as np

        known.update({getattr(np, n): f"numpy.{n}" for n in ("mean", "median", "average", "std", "var")})
    except ImportError:
        pass
    return known


def _check_associative(reducer: Any) -> None:
    """Refuse reducers known to give wrong answers when applied to partial results."""
    try:
        name = _not_associative().get(reducer)
    except TypeError:  # unhashable callable
        return
    if name is not None:
        raise SpecError(f"--reduce {name} is not associative: {name} of partial results is not {name} of "
                        "all values, since batches differ. Reduce sums and counts instead (e.g. make each "
                        "item (value, 1), --reduce with a pairwise sum) and finish in the notebook")


def start_run(client: Client, payload: Payload, items: Any, options: RunOptions, mode: Mode = "map") -> Run:
    """Check the options against the cluster and start a :class:`Run` (it runs in the background)."""
    # the options were checked when the RunOptions was made (core/options.py)
    _check_associative(options.reduce)
    wait_for_restarts(client)  # workers a stop restarted: let them come back first
    threads, workers = diagnose.eligible_workers(client, options, starting=True)
    stored = open_for_run(payload, items, options, mode) if options.checkpoint else None
    return Run(client, payload, items, options, mode, threads, workers, stored).start()


def make_payload(label: str, token: str, *, cell: Any = None, func: Callable[..., Any] | None = None,
                 captured: dict[str, bytes] | None = None, options: RunOptions, topic: str | None,
                 store_names: bool = False) -> Payload:
    reducer = cloudpickle.dumps(options.reduce) if options.reduce is not None else None
    return Payload(token=token, label=label, cell=cell,
                   func=cloudpickle.dumps(func) if func is not None else None,
                   captured=captured or {}, reducer=reducer, on_error=options.on_error,
                   retries=options.retries, topic=topic, store_names=store_names, seed=options.seed,
                   timeout=options.timeout)


def warn_all(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
