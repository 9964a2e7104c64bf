"""A Run: the tasks of one distributed cell on the cluster, its progress, its result.

A driver thread submits the batches (all at once for a sized input, a bounded number in flight
for a generator), lays out the tree reduction as batches are submitted, watches the tasks finish
and fetches the result. The caller waits on an event, so a kernel interrupt reaches it at once
and :meth:`Run.cancel` removes every task of the run from the cluster.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import secrets
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from dask.utils import format_bytes
from distributed import Client, Future

from . import config, plan
from .errors import (
    CellError,
    ItemError,
    ItemFailure,
    RunLostError,
    SpecError,
    TaskCutShort,
    describe_error,
    safe_repr,
    shorten,
    type_name,
)
from .events import Inbox, OutputRecord, router
from .kept import KeptResults, KeptValue
from .stopping import StopReport, expect_restart, stop_tasks, wait_for_restarts
from .task import Batch, BatchResult, Partial, Payload, reduce_partials, run_batch

ON_ERROR = ("raise", "skip", "collect")
MAX_RETRIES = 1000


@dataclass
class RunOptions:
    """How to run: the options of ``%%distribute`` and of :func:`ipydistribute.distribute`."""

    reduce: Callable[[Iterable[Any]], Any] | None = None
    batch: int | None = None  # items per task; None: automatic
    gpu: float = 0
    resources: dict[str, float] = field(default_factory=dict)
    workers: list[str] | None = None
    retries: int = 0
    on_error: str = "raise"
    keep: bool = False
    name: str | None = None
    timeout: float | None = None  # --timeout: seconds an item may run before it fails
    max_in_flight: int | None = None  # tasks in flight for a generator; None: 2 per thread
    fan_in: int = field(default_factory=lambda: int(config.get("fan-in")))
    target_task_seconds: float = field(default_factory=lambda: config.seconds("batch.target-duration"))
    max_batch: int = field(default_factory=lambda: int(config.get("batch.max-items")))
    # bytes of payload above which it is scattered once instead of sent with each task
    scatter_threshold: int = field(default_factory=lambda: config.nbytes("scatter-threshold"))

    def all_resources(self) -> dict[str, float]:
        resources = dict(self.resources)
        if self.gpu:
            resources["GPU"] = self.gpu
        return resources


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run, for views."""

    label: str
    token: str
    state: str  # pending, running, finished, error, cancelled
    items_total: int | None
    items_done: int
    tasks_submitted: int
    tasks_done: int
    tasks_failed: int
    elapsed: float


def _elapsed_of(result: BatchResult | Partial) -> tuple[float, int]:
    n = len(result.values) + len(result.failures) if isinstance(result, BatchResult) else result.count
    return result.elapsed, n


def _count_threads(client: Client, options: RunOptions) -> tuple[int, list[str]]:
    """Threads of the workers this run may use; fails at once when none qualifies."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    wanted = options.all_resources()
    chosen = []
    threads = 0
    for address, worker in info.items():
        if options.workers is not None and not _worker_matches(address, worker, options.workers):
            continue
        have = worker.get("resources", {}) or {}
        if any(have.get(k, 0) < v for k, v in wanted.items()):
            continue
        chosen.append(address)
        threads += int(worker.get("nthreads", 1))
    if not info:
        raise SpecError("the cluster has no workers: add some with `%cluster scale N` or `%cluster start`")
    if not chosen:
        named = [a for a, w in info.items() if options.workers is not None
                 and _worker_matches(a, w, options.workers)]
        if options.workers is not None and not named:
            known = ", ".join(sorted(str(w.get("name", a)) for a, w in info.items()))
            raise SpecError(f"no worker matches --workers {','.join(options.workers)}: the workers are {known}")
        if named:
            need = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
            raise SpecError(f"--workers {','.join(options.workers or [])} offer no {need}: drop --workers, "
                            "or name workers that have it")
        need = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        hint = "start GPU workers with `%cluster start --gpus auto` (or `--simulate-gpus N` to practise)" \
            if "GPU" in wanted else "start workers with `dask worker ADDRESS --resources \"NAME=N\"`"
        raise SpecError(f"no worker offers {need}: {hint}")
    return threads, chosen


def _worker_matches(address: str, worker: dict[str, Any], wanted: list[str]) -> bool:
    names = {address, str(worker.get("name")), str(worker.get("host", ""))}
    return any(w in names for w in wanted)


class Run:
    """The tasks of one distributed cell on the cluster.

    Created by :func:`start_run`; :meth:`result` waits for and returns the value.
    """

    def __init__(self, client: Client, payload: Payload, items: Any, options: RunOptions,
                 mode: str, threads: int, workers: list[str]):
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
        self.state = "pending"
        self.started = time.time()
        self.ended: float | None = None
        self.error: BaseException | None = None
        self.value: Any = None
        self.warnings: list[str] = []
        self.output: collections.deque[OutputRecord] = collections.deque()
        self._inbox = Inbox()
        self.failures: list[ItemFailure] = []
        self.stopped: StopReport | None = None  # what cancel() interrupted and restarted
        self._salvaged: dict[Any, BatchResult] = {}  # key -> result of a task ended by a --timeout restart
        self._payload_ref: Any = payload
        self._futures: dict[Any, Future] = {}  # every live future of this run, by key
        self._batch_futures: list[Future] = []
        self._items_of: dict[Any, int] = {}
        self._first_item: dict[Any, tuple[int, Any]] = {}  # key -> (index, item) of its first item
        self._finished: collections.deque[Future] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._in_flight = 0
        self._tasks_submitted = 0
        self._tasks_done = 0
        self._tasks_failed = 0
        self._items_done = 0
        self._done_callbacks: list[Callable[[Run], None]] = []
        self._reduce_counts: collections.Counter[int] = collections.Counter()
        self._root: Future | None = None
        self.batch_size: int | None = self.options.batch  # items per task, once chosen
        self.max_in_flight: int | None = None  # bound on tasks in flight (generators only)
        self._driver = threading.Thread(target=self._drive, name=f"ipydistribute-run-{self.label}", daemon=True)

    # --- public -------------------------------------------------------------------------------

    def start(self) -> Run:
        if self.payload.topic:
            self._inbox = router.open(self.client, self.token)
            self.output = self._inbox.output
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

    def cancel(self) -> None:
        """Stop submitting and remove every task of this run from the cluster."""
        if self._done.is_set():
            return
        self._stop.set()
        self.stopped = stop_tasks(self.client, self.token, list(self._futures.values()), label=self.label)
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

    def progress(self) -> Progress:
        end = self.ended if self.ended is not None else time.time()
        return Progress(self.label, self.token, self.state, self.items_total, self._items_done,
                        self._tasks_submitted, self._tasks_done, self._tasks_failed,
                        end - self.started)

    def __repr__(self) -> str:
        p = self.progress()
        total = "?" if p.items_total is None else p.items_total
        return f"<Run {self.label}: {p.state}, {p.items_done}/{total} items, {p.elapsed:.1f} s>"

    # --- driver -------------------------------------------------------------------------------

    def _drive(self) -> None:
        try:
            self._prepare_payload()
            if self.mode == "all":
                self._submit_all_workers()
            elif self.mode == "single":
                self._submit([Batch(0, [None])], role="run")
            else:
                self._submit_map()
            self._wait_for_tasks()
            if self._stop.is_set():
                raise KeyboardInterrupt
            self.value = self._collect()
            self._finish("finished")
        except KeyboardInterrupt:
            self._finish("cancelled", RunLostError(f"{self.label} was cancelled"))
        except BaseException as exc:
            self._cancel_futures()
            self._finish("error", exc)

    def _prepare_payload(self) -> None:
        size = sum(len(b) for b in self.payload.captured.values()) + len(self.payload.func or b"")
        size += len(self.payload.reducer or b"")
        if size > self.options.scatter_threshold:
            self._payload_ref = self.client.scatter(self.payload, hash=False, workers=self.workers)
            self._futures[self._payload_ref.key] = self._payload_ref

    def _key(self, role: str, *index: int) -> tuple[Any, ...]:
        return (f"{self.label}-{role}-{self.token}", *index)

    def _task_options(self) -> dict[str, Any]:
        return dict(pure=False, resources=self.options.all_resources() or None,
                    workers=self.options.workers, allow_other_workers=False,
                    retries=self.options.retries or None)

    def _track(self, futures: list[Future], items: list[int]) -> None:
        with self._cond:
            for future, n in zip(futures, items):
                self._futures[future.key] = future
                self._items_of[future.key] = n
                self._in_flight += 1
                self._tasks_submitted += 1
        for future in futures:
            future.add_done_callback(self._on_task_done)
        if self._stop.is_set():  # cancelled while this submission was on its way
            self._cancel_futures()

    def _submit(self, batches: list[Batch], role: str = "map") -> list[Future]:
        start = len(self._batch_futures)
        keys = [self._key(role, start + i) for i in range(len(batches))]
        for batch in batches:
            _pack(batch)
        futures = self.client.map(run_batch, batches, key=keys, payload=self._payload_ref,
                                  **self._task_options())
        self._batch_futures.extend(futures)
        for future, batch in zip(futures, batches):
            self._first_item[future.key] = (batch.start, batch.items[0] if batch.count else None)
        self._track(futures, [len(b) for b in batches])
        return futures

    def _submit_all_workers(self) -> None:
        keys = [self._key("all", i) for i in range(len(self.workers))]
        futures = [
            self.client.submit(run_batch, Batch(0, [None]), key=key, payload=self._payload_ref,
                               pure=False, workers=[address], allow_other_workers=False)
            for key, address in zip(keys, self.workers)
        ]
        self._batch_futures.extend(futures)
        self._track(futures, [1] * len(futures))

    def _submit_map(self) -> None:
        tree = plan.TreeReducer(self.options.fan_in) if self.payload.reducer is not None else None
        if isinstance(self._items, KeptResults):
            self._submit_kept(self._items, tree)
        else:
            self._submit_batches(plan.Batcher(self._items), tree)
        if tree is not None and not self._stop.is_set():
            self._fold(tree)

    def _submit_kept(self, kept: KeptResults, tree: plan.TreeReducer | None) -> None:
        keys = [self._key("map", i) for i in range(len(kept.futures))]
        futures = self.client.map(run_batch, kept.futures, key=keys, payload=self._payload_ref,
                                  **self._task_options())
        self._batch_futures.extend(futures)
        self._track(futures, kept.lengths)
        if tree is not None:
            tree.fan_in = plan.fan_in_for(len(futures), self.options.fan_in)
            self._add_leaves(tree, futures)

    def _submit_batches(self, batcher: plan.Batcher, tree: plan.TreeReducer | None) -> None:
        sized = batcher.remaining is not None
        # A generator is pulled only as fast as the cluster works through it.
        cap = self.options.max_in_flight or (None if sized else max(4, 2 * self.threads))
        self.max_in_flight = cap
        size = self.options.batch
        planned: list[int] = []  # sizes of the batches of a sized input cut by auto batching
        if size is None:
            length = batcher.remaining
            if length is not None and length <= self.threads * plan.TASKS_PER_THREAD:
                size = 1
            else:
                seconds = self._probe(batcher, tree)
                size = plan.auto_batch_size(batcher.remaining, self.threads, seconds,
                                            self.options.target_task_seconds, self.options.max_batch)
                if seconds is not None and batcher.remaining:
                    planned = plan.tapered_sizes(batcher.remaining, size, self.threads, seconds)
        self.batch_size = size
        sizes = itertools.chain(planned, itertools.repeat(size))
        if tree is not None and batcher.remaining is not None:
            leaves = len(self._batch_futures) + (len(planned) or -(-batcher.remaining // size))
            tree.fan_in = plan.fan_in_for(leaves, self.options.fan_in)
        while not self._stop.is_set():
            room = None if cap is None else self._wait_for_room(cap)
            if room == 0:
                continue
            batches: list[Batch] = []
            while room is None or len(batches) < room:
                batch = self._take(batcher, next(sizes))
                if batch is None:
                    break
                batches.append(batch)
            if not batches:
                return
            self._submit_leaves(batches, tree)

    def _submit_leaves(self, batches: list[Batch], tree: plan.TreeReducer | None) -> list[Future]:
        """Submit map batches and, with a reducer, lay them into the tree as its next leaves."""
        futures = self._submit(batches)
        if tree is not None:
            self._add_leaves(tree, futures)
        return futures

    def _take(self, batcher: plan.Batcher, size: int) -> Batch | None:
        try:
            return batcher.take(size)
        except Exception as exc:
            raise SpecError(f"the iterable raised after {batcher.position:,} items: {type(exc).__name__}: "
                            f"{shorten(str(exc), 200)}; nothing was stored") from exc

    def _probe(self, batcher: plan.Batcher, tree: plan.TreeReducer | None) -> float | None:
        """Run and time a few items per thread; returns seconds per item (None if none finished)."""
        size = plan.probe_size(batcher.remaining, self.threads)
        first = [b for b in (self._take(batcher, size) for _ in range(max(1, self.threads))) if b is not None]
        for batch in first:
            batch.probe = True
        if not first:
            return None
        futures = self._submit_leaves(first, tree)
        # A second wave of the same size keeps every thread busy while the timing comes back
        # (slow items would otherwise leave the workers idle for a round trip).
        if batcher.remaining is not None and batcher.remaining >= 4 * size * len(first):
            self._submit_leaves([b for b in (self._take(batcher, size) for _ in first) if b is not None], tree)
        finished, finished_batches = [], []
        for future, batch in zip(futures, first):
            while not future.done():
                if self._stop.is_set():
                    raise KeyboardInterrupt
                self._process_finished(timeout=0.05)
            if future.status != "finished":
                self._process_finished(timeout=0)
                if self.error is not None or self._stop.is_set():
                    raise KeyboardInterrupt if self.error is None else self.error
                continue
            finished.append(future)
            finished_batches.append(batch)
        timings = self._probe_timings(finished, finished_batches)
        return sum(t for t, _ in timings) / max(1, sum(n for _, n in timings)) if timings else None

    def _probe_timings(self, futures: list[Future], batches: list[Batch]) -> list[tuple[float, int]]:
        """(seconds, items) of the finished probe tasks: from their events (sent ahead of the
        results), else in one round trip that leaves the values on the workers."""
        reported = [self._inbox.timings.get(batch.start) for batch in batches]
        if all(timing is not None for timing in reported):
            return [timing for timing in reported if timing is not None]
        return list(self.client.gather(self.client.map(_elapsed_of, futures, pure=False)))

    def _wait_for_room(self, cap: int) -> int:
        """Wait until fewer than ``cap`` tasks are in flight; returns how many may be added."""
        while True:
            self._process_finished(timeout=0.1)
            if self.error is not None:
                raise self.error
            if self._stop.is_set():
                return 0
            with self._cond:
                room = cap - self._in_flight
            if room > 0:
                return room

    def _add_leaves(self, tree: plan.TreeReducer, futures: list[Future]) -> None:
        groups = [group for future in futures for group in tree.add(future)]
        self._combine(tree, groups)

    def _combine(self, tree: plan.TreeReducer, groups: list[tuple[int, list[Future]]]) -> None:
        """Submit a reduce task per group (all of a round in one call, as ``client.map`` does
        for the map), add the results one level up, and repeat while that completes groups."""
        while groups:
            to_reduce = [(level, group) for level, group in groups if len(group) > 1]
            reduced = iter(self._submit_reduce(to_reduce))
            nodes = [(level, group[0] if len(group) == 1 else next(reduced)) for level, group in groups]
            groups = [up for level, node in nodes for up in tree.add(node, level)]

    def _submit_reduce(self, groups: list[tuple[int, list[Future]]]) -> list[Future]:
        if not groups:
            return []
        keys = []
        for level, _ in groups:
            keys.append(self._key(f"reduce{level}", self._reduce_counts[level]))
            self._reduce_counts[level] += 1
        futures = self.client.map(reduce_partials, [group for _, group in groups], key=keys,
                                  payload=self._payload_ref, pure=False, retries=self.options.retries or None)
        self._track(futures, [0] * len(futures))
        return futures

    def _fold(self, tree: plan.TreeReducer) -> None:
        while True:
            groups = tree.pending_groups()
            if not groups:
                break
            self._combine(tree, groups)
        self._root = tree.root()

    def _on_task_done(self, future: Future) -> None:
        with self._cond:
            self._finished.append(future)
            self._cond.notify_all()

    def _process_finished(self, timeout: float) -> None:
        with self._cond:
            if not self._finished and timeout > 0:
                self._cond.wait(timeout)
            finished = list(self._finished)
            self._finished.clear()
        for future in finished:
            self._account(future)

    def _account(self, future: Future) -> None:
        status = future.status
        with self._cond:
            self._in_flight -= 1
            if status == "finished":
                self._tasks_done += 1
                self._items_done += self._items_of.get(future.key, 0)
            elif status == "error":
                self._tasks_failed += 1
        if self.error is not None or self._stop.is_set():
            return
        if status == "error":
            self._on_task_error(future)
        elif status == "cancelled":
            self.error = self._cancelled_error()
            self._stop.set()
            self._cancel_futures()

    def _cancelled_error(self) -> RunLostError:
        if self.client.status != "running":
            return RunLostError(f"{self.label} lost its connection to the scheduler ({self.client.status}): "
                                "the cluster is gone; start a new one with `%cluster start`")
        return RunLostError(f"{self.label}: the cluster cancelled its tasks (another client or a "
                            "restart of the cluster); run the cell again")

    def _on_task_error(self, future: Future) -> None:
        exc = future.exception()
        if isinstance(exc, TaskCutShort) and exc.nanny:
            expect_restart(self.client, exc.failure.worker, exc.nanny)
        if isinstance(exc, TaskCutShort) and exc.result is not None and self.payload.reducer is None:
            # an item stuck past --timeout under --on-error skip/collect: the batch's result, kept here
            self._salvaged[future.key] = exc.result  # (its worker restarts: nothing can stay there)
            return
        if isinstance(exc, ItemError):
            self.failures.append(exc.failure)
            self.error = CellError(self.label, self.failures, total=max(1, self._tasks_failed))
        else:
            self.error = self._lost_error(future, exc)
        self._stop.set()
        # the failed run's other running items would keep their workers busy: stop them too
        self.stopped = stop_tasks(self.client, self.token, list(self._futures.values()), label=self.label)

    def _lost_error(self, future: Future, exc: BaseException | None) -> BaseException:
        from distributed.scheduler import KilledWorker

        if not isinstance(exc, KilledWorker):
            return exc if exc is not None else RunLostError(f"{self.label}: task {future.key} failed")
        n = self._items_of.get(future.key, 0)
        index, item = self._first_item.get(future.key, (None, None))
        what = "the reduction" if index is None else (
            f"item #{index} ({safe_repr(item, 60)})" if n == 1 else
            f"items #{index} to #{index + n - 1} (first: {safe_repr(item, 60)})")
        limit_bytes, attempts = _killed_worker_facts(exc)
        if not limit_bytes:  # not carried by the exception: the workers' limit now
            limits = sorted({w.get("memory_limit", 0) for w in
                             self.client.scheduler_info(n_workers=-1)["workers"].values()} - {0})
            limit_bytes = limits[-1] if limits else 0
        limit = f" (memory limit {format_bytes(limit_bytes)} per worker)" if limit_bytes else ""
        return RunLostError(
            f"{self.label}: {what} killed the workers that ran it{limit}, {attempts} times: "
            "it may use too much memory or crash the process; use smaller items or --batch 1, "
            "or workers with more memory")

    def _wait_for_tasks(self) -> None:
        restricted = bool(self.options.workers or self.options.all_resources())
        next_check = time.monotonic() + 2
        while True:
            self._process_finished(timeout=0.1)
            if self.error is not None:
                raise self.error
            if restricted and time.monotonic() > next_check:
                self._check_workers_remain()
                next_check = time.monotonic() + 2
            if self._stop.is_set():
                return
            with self._cond:
                if self._in_flight <= 0 and not self._finished:
                    return

    def _check_workers_remain(self) -> None:
        """Tasks restricted to workers (or resources) that no longer exist would wait forever."""
        try:
            _count_threads(self.client, self.options)
        except SpecError as exc:
            waiting = sorted(index for key, (index, _) in self._first_item.items()
                             if key in self._futures and self._futures[key].status == "pending")
            what = f"item #{waiting[0]}" + (f" and {len(waiting) - 1} more" if len(waiting) > 1 else "") \
                if waiting else "its remaining tasks"
            raise RunLostError(f"{self.label} cannot finish: {exc} (the workers it may use are gone); "
                               f"{what} were not done") from None

    def _collect(self) -> Any:
        if self.mode == "all":
            results = self.client.gather(self._batch_futures)
            return {r.worker: r.values[0] for r in results}
        if self.payload.reducer is not None:
            return self._collect_reduced()
        if self.options.keep:
            lengths = [self._items_of[f.key] for f in self._batch_futures]
            kept = [self.client.scatter(self._salvaged[f.key], hash=False) if f.key in self._salvaged else f
                    for f in self._batch_futures]  # a batch cut short by a --timeout restart: its result
            return KeptResults(self.client, kept, lengths, self.label)
        remote = [f for f in self._batch_futures if f.key not in self._salvaged]
        self._check_result_size(remote)
        gathered = iter(self.client.gather(remote))
        batches: list[BatchResult] = [self._salvaged[f.key] if f.key in self._salvaged else next(gathered)
                                      for f in self._batch_futures]
        values = [value for batch in batches for value in batch.values]
        failures = [f for batch in batches for f in batch.failures]
        self._note_skipped(failures, len(failures))
        if self.mode == "single":
            return values[0] if values else None
        return values

    def _collect_reduced(self) -> Any:
        root = self._root
        if root is None:  # no items at all
            return self._reduce_empty()
        if self.options.keep:
            return KeptValue(root, self.label)
        self._check_result_size([root])
        partial: Partial = root.result()
        self._note_skipped(partial.failures, partial.failure_count)
        if partial.count == 0:
            return self._reduce_empty()
        return partial.value

    def _check_result_size(self, futures: list[Future]) -> None:
        """Refuse to bring back more than ``ipydistribute.result-limit`` into the kernel."""
        if not futures:
            return
        limit = config.nbytes("result-limit")
        sizes = self.client.nbytes(keys=[f.key for f in futures], summary=False)
        total = sum(sizes.values())
        if total > limit:
            raise SpecError(
                f"the results of {self.label} are {format_bytes(total)}, more than the "
                f"{format_bytes(limit)} ipydistribute.result-limit allows into the kernel: leave them on "
                "the cluster with --keep (then reduce them or gather parts), reduce them with --reduce, "
                "or raise the limit with dask.config.set({'ipydistribute.result-limit': '8GiB'})")

    def _reduce_empty(self) -> Any:
        reducer = cloudpickle.loads(self.payload.reducer) if self.payload.reducer else None
        assert reducer is not None
        try:
            return reducer([])
        except Exception as exc:
            raise SpecError(f"no item produced a value, and the reducer {safe_repr(reducer, 60)} "
                            f"fails on nothing ({type(exc).__name__}: {exc}); give it a default") from None

    def _note_skipped(self, failures: list[ItemFailure], count: int) -> None:
        if not count:
            return
        self.failures.extend(failures)
        if self.options.on_error == "skip":
            first = failures[0] if failures else None
            detail = f"; first: {first.exc_type}: {first.message} ({first.where()})" if first else ""
            self.warnings.append(f"{count} item(s) of {self.label} failed and were skipped{detail}")

    def _cancel_futures(self) -> None:
        futures = list(self._futures.values())
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:  # the client may already be closed: nothing is left to cancel then
                pass

    def _finish(self, state: str, error: BaseException | None = None) -> None:
        with self._cond:
            if self._done.is_set():
                return
            if error is not None and self.error is None:
                self.error = error
            self.state = state
            self.ended = time.time()
            callbacks, self._done_callbacks = self._done_callbacks, []
        if not (self.options.keep and state == "finished"):
            self._futures.clear()
            self._batch_futures = []
        self._done.set()
        for fn in callbacks:
            fn(self)



def _pack(batch: Batch) -> None:
    """Pickle a batch's items now, in the kernel, so that an item that cannot be sent is named."""
    try:
        batch.pack()
    except Exception as batch_error:
        offset, item, error = _first_unpicklable(batch.items) or (0, None, batch_error)
        raise SpecError(
            f"item {batch.start + offset:,} ({safe_repr(item, 60)}, a {type_name(item)}) cannot be "
            f"sent to the workers: {describe_error(error)}; give the cell plain data "
            f"(numbers, strings, arrays, paths) and build such objects inside the cell"
        ) from None


def _first_unpicklable(items: Any) -> tuple[int, Any, Exception] | None:
    for offset, item in enumerate(items):
        try:
            cloudpickle.dumps(item)
        except Exception as exc:
            return offset, item, exc
    return None


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


def _killed_worker_facts(exc: BaseException) -> tuple[int, int]:
    """The last worker's memory limit and the number of attempts, as the scheduler saw them."""
    try:
        limit = int(getattr(exc.last_worker, "memory_limit", 0) or 0)  # type: ignore[attr-defined]
    except Exception:  # an older or differently pickled KilledWorker
        limit = 0
    try:
        attempts = int(exc.allowed_failures) + 1  # type: ignore[attr-defined]
    except Exception:
        import dask

        attempts = int(dask.config.get("distributed.scheduler.allowed-failures", 3)) + 1
    return limit, attempts


def start_run(client: Client, payload: Payload, items: Any, options: RunOptions, mode: str = "map") -> Run:
    """Check the options against the cluster and start a :class:`Run` (it runs in the background)."""
    if options.on_error not in ON_ERROR:
        raise SpecError(f"--on-error must be one of {', '.join(ON_ERROR)}, not {options.on_error!r}")
    if options.on_error == "collect" and options.reduce is not None:
        raise SpecError("--on-error collect keeps errors in place of values, which a reducer cannot sum: "
                        "use --on-error skip with --reduce")
    if options.batch is not None and options.batch < 1:
        raise SpecError(f"--batch must be a positive number of items or 'auto', not {options.batch}")
    if not 0 <= options.retries <= MAX_RETRIES:
        raise SpecError(f"--retries must be between 0 and {MAX_RETRIES}, not {options.retries}")
    if options.timeout is not None and not (isinstance(options.timeout, (int, float)) and not isinstance(
            options.timeout, bool) and math.isfinite(options.timeout) and options.timeout > 0):
        raise SpecError(f"--timeout takes a positive number of seconds, like --timeout 60, not {options.timeout!r}")
    _check_associative(options.reduce)
    wait_for_restarts(client)  # workers a stop restarted: let them come back first
    threads, workers = _count_threads(client, options)
    return Run(client, payload, items, options, mode, threads, workers).start()


def new_token() -> str:
    """A run token: 8 hex digits, which Dask's key_split leaves out of the group prefix."""
    return secrets.token_hex(4)


def make_payload(label: str, token: str, *, cell: Any = None, func: Callable[..., Any] | None = None,
                 captured: dict[str, bytes] | None = None, options: RunOptions, topic: str | None,
                 store_names: bool = False) -> Payload:
    reducer = cloudpickle.dumps(options.reduce) if options.reduce is not None else None
    return Payload(token=token, label=label, cell=cell,
                   func=cloudpickle.dumps(func) if func is not None else None,
                   captured=captured or {}, reducer=reducer, on_error=options.on_error,
                   topic=topic, store_names=store_names, timeout=options.timeout)


def warn_all(messages: list[str]) -> None:
    for message in messages:
        warnings.warn(message, RuntimeWarning, stacklevel=3)
