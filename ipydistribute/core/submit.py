"""Putting a run's tasks on the cluster: map batches, the one task of a cell without items, one
task per worker for ``--all``, and reduce tasks. Every task is recorded in the run's ledger and
its future kept until the run no longer needs it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import cloudpickle
from distributed import Client, Future

from . import ended, wire
from .embedded_servers import MANY_TASKS, EmbeddedScheduler
from .errors import SpecError, describe_error, safe_repr, type_name
from .kept import KeptResults
from .keys import task_key
from .ledger import Ledger, Role
from .on_scheduler import in_process_scheduler
from .task import reduce_partials, run_batch
from .wire import Batch, Payload

if TYPE_CHECKING:
    from .options import RunOptions


class Submitter:
    """Submits the tasks of one run and keeps their futures.

    ``on_done`` is called (from Dask's thread) with each future of the run that ends.
    """

    def __init__(self, client: Client, payload: Payload, options: RunOptions, ledger: Ledger,
                 workers: list[str], on_done: Callable[[Future], None], stopped: threading.Event,
                 holds_map_futures: bool = True):
        self.client = client
        self.payload = payload
        self.options = options
        self.ledger = ledger
        self.workers = workers
        self._on_done = on_done
        self._stopped = stopped
        self._payload_ref: Any = payload
        self.futures: dict[Hashable, Future] = {}  # every future the run still needs, by key
        # Map futures in submission (= item) order, held to the end for --keep, --all and the
        # reduction; a run whose values stream home lets go of each once its values are home.
        self.holds_map_futures = holds_map_futures
        self.map_futures: list[Future] = []
        self.map_tasks = 0
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        # The scheduler holding its reports to this client for the run (a run of many tasks),
        # and whether the run has ended (no hold is taken after).
        self._reports_held_by: EmbeddedScheduler | None = None
        self._reports_ended = False

    def prepare_payload(self) -> None:
        """Pickle the payload once for the run, and scatter a large one once instead of
        sending it with every task."""
        payload = self.payload
        payload.pack()
        size = sum(len(b) for b in payload.captured.values()) + len(payload.func or b"")
        size += len(payload.reducer or b"")
        size += sum(len(source) for module in payload.modules.values() for _, source in module.files)
        if size > self.options.scatter_threshold:
            self._payload_ref = self.client.scatter(payload, hash=False, workers=self.workers)
            self.futures[self._payload_ref.key] = self._payload_ref
            if len(self.workers) > 1:  # on one worker only, it pins every task there (bench/payload_spread.py)
                self.client.replicate([self._payload_ref], workers=self.workers)

    def key(self, role: str) -> tuple[str, int]:
        """The next task key of ``role``: ``(LABEL-ROLE-TOKEN, n)``, grouped by Dask as LABEL-ROLE."""
        with self._lock:
            n = self._counts.get(role, 0)
            self._counts[role] = n + 1
        return task_key(self.payload.label, role, self.payload.token, n)

    def _task_options(self) -> dict[str, Any]:
        # No Dask retries: items are retried one by one inside their batch (run_batch), and a
        # task of a dead worker is rescheduled by Dask without counting as a retry.
        return dict(pure=False, resources=self.options.all_resources() or None,
                    workers=self.options.workers, allow_other_workers=False)

    def batches(self, batches: list[Batch], role: Role = "map") -> list[Future]:
        keys = [self.key("map" if role == "map" else "run") for _ in batches]
        for batch in batches:
            pack(batch)
        with wire.handing_over(in_process_scheduler(self.client) is not None):
            futures = self.client.map(run_batch, batches, key=keys, payload=self._payload_ref,
                                      **self._task_options())
        for future, batch in zip(futures, batches):
            self.ledger.add(future.key, role, batch.start, batch.count, batch.first)
        self._hold(futures)
        self._track(futures)
        return futures

    def kept(self, kept: KeptResults) -> list[Future]:
        """Map over results an earlier run left on the cluster (each is a batch already)."""
        keys = [self.key("map") for _ in kept.futures]
        futures = self.client.map(run_batch, kept.futures, key=keys, payload=self._payload_ref,
                                  **self._task_options())
        start = 0
        for future, length in zip(futures, kept.lengths):
            self.ledger.add(future.key, "map", start, length)
            start += length
        self._hold(futures)
        self._track(futures)
        return futures

    def all_workers(self) -> list[Future]:
        futures = []
        for address in self.workers:
            key = self.key("all")
            futures.append(self.client.submit(run_batch, Batch(0, [None]), key=key, payload=self._payload_ref,
                                              pure=False, workers=[address], allow_other_workers=False))
            self.ledger.add(key, "all", 0, 1)
        self._hold(futures)
        self._track(futures)
        return futures

    def reduce(self, groups: list[tuple[int, list[Future]]]) -> list[Future]:
        """One reduce task per group of partials (a level of the tree in one call)."""
        if not groups:
            return []
        keys = [self.key(f"reduce{level}") for level, _ in groups]
        futures = self.client.map(reduce_partials, [group for _, group in groups], key=keys,
                                  payload=self._payload_ref, pure=False)
        for future in futures:
            self.ledger.add(future.key, "reduce")
        self._track(futures)
        return futures

    def _hold(self, futures: list[Future]) -> None:
        self.map_tasks += len(futures)
        if self.holds_map_futures:
            self.map_futures.extend(futures)
        if self.map_tasks >= MANY_TASKS and self._reports_held_by is None and not self._reports_ended:
            # Many tasks: their reports gather for 2 ms (a cell of a few tasks has each at once).
            scheduler = in_process_scheduler(self.client)
            if isinstance(scheduler, EmbeddedScheduler):
                scheduler.hold_reports(self.client.id, True)
                self._reports_held_by = scheduler

    def end_report_hold(self) -> None:
        """The run is over: the scheduler's reports to this client go at once again."""
        self._reports_ended = True
        scheduler, self._reports_held_by = self._reports_held_by, None
        if scheduler is not None:
            scheduler.hold_reports(self.client.id, False)

    def _track(self, futures: list[Future]) -> None:
        with self._lock:
            for future in futures:
                self.futures[future.key] = future
        ended.when_ended(self.client, futures, self._on_done)
        if self._stopped.is_set():  # cancelled while this submission was on its way
            self.cancel_all()

    def release(self, keys: list[Hashable]) -> None:
        """The run no longer needs these tasks: Dask frees their results once nothing else does."""
        with self._lock:
            for key in keys:
                self.futures.pop(key, None)

    def cancel_all(self) -> None:
        with self._lock:
            futures = list(self.futures.values())
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:  # the client may already be closed: nothing is left to cancel then
                pass

    def clear(self) -> None:
        with self._lock:
            self.futures.clear()
        self.map_futures = []
        ended.forget(self.client, [entry.key for entry in self.ledger.entries()])  # those that never ended


def pack(batch: Batch) -> None:
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
