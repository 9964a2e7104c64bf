"""How a map run feeds its items to the cluster: the timing probe of auto batching, batch sizes,
how many tasks may be in flight, and which batches send their results ahead of their tasks' ends.
A list of plain numbers is packed while the probe runs, and its first round of batches leaves
before the rest is packed (core/number_lists.py).

A sized input is submitted at once, except under ``--reduce`` with large partials: then at most
2 x threads map tasks are in flight, so finished partials are folded before more are made (60
arrays of 16 MB summed: see docs/design.md). A generator is always pulled only as fast as the
cluster works through it. Either way, tasks go in calls of at most ``SUBMIT_CHUNK`` and no more
than ``IN_FLIGHT_AT_MOST`` are in flight.
"""

from __future__ import annotations

import itertools
from types import BuiltinFunctionType
from typing import TYPE_CHECKING, Any, Protocol

from distributed import Future

from . import identity, number_lists, on_scheduler, plan
from .errors import SpecError, shorten
from .kept import KeptResults
from .reduction import TreeReduction
from .submit import Submitter
from .wire import Batch, BatchResult, Partial

if TYPE_CHECKING:
    import threading

    from .options import RunOptions

#: A partial at least this large makes a reduction keep its map tasks in flight bounded.
LARGE_PARTIAL_BYTES = 1 << 20
#: The tree's fan-in for large partials, and while their size is not known yet (no group forms
#: before the first partial is measured; at most the bound on tasks in flight wait for it).
LARGE_FAN_IN = 2
UNDECIDED_FAN_IN = 1 << 30
#: Small partials of at most this many leaves are combined by one reduce task: each level of the
#: tree is a round trip after the last leaf (1,000,000 shipped ints: 10 leaves, 3 reduce tasks
#: on 2 levels before, 1 now).
ONE_TASK_LEAVES = 32
#: A run of at most this many map tasks whose small results the kernel takes has each sent ahead
#: of its task's end (core/task.py, ``_send_ahead``): no fetch after the last task.
FEW_TASKS = 32
#: Small partials held by one reduce task at most, as measured by the first partial.
REDUCE_TASK_BYTES = 16 << 20
#: Map tasks submitted in one call at most, and in flight at most (seconds of work for tasks of
#: a millisecond): 40,000 one-item tasks submitted at once kept the kernel's scheduler taking
#: them in for seconds, and a stop waited for that before it could cancel them.
SUBMIT_CHUNK = 1000
IN_FLIGHT_AT_MOST = 4000
#: How long packing the input waits for the probe's tasks to leave the kernel (the scheduler here
#: takes 1-3 ms; queued behind other work, they may take longer, and the packing goes ahead).
PROBE_SEND_SECONDS = 0.02
#: Items left to pack as numbers (about 10 ns each) beyond which the first round of batches leaves
#: first, its dispatch waited for (about 2 ms), and the rest is packed while it runs.
PIPELINED_PACKING = 200_000


class Driver(Protocol):
    """What the map strategy needs from the run's driver."""

    threads: int
    stopped: threading.Event

    def pump(self, timeout: float) -> None:
        """Handle tasks that ended (raises the run's error, if any)."""

    def probe_timing(self, start: int) -> tuple[float, int] | None:
        """The timing a probe batch sent ahead of its result, if it arrived."""

    def follow_leaves_on_scheduler(self) -> None:
        """The reduction's leaves may be followed without holding their futures."""


class MapSubmission:
    def __init__(self, driver: Driver, submitter: Submitter, options: RunOptions, tree: TreeReduction | None):
        self.driver = driver
        self.submitter = submitter
        self.options = options
        self.tree = tree
        self.batch_size: int | None = options.batch  # items per task, once chosen
        self.max_in_flight: int | None = None  # bound on tasks in flight, when there is one
        self._check_partials = False  # a reduction waits for its first partial's size
        self._small_partials: bool | None = None  # what it found
        self._partial_bytes = 0  # the size of the first partial, once measured
        self._leaves: int | None = None  # map tasks of a sized input, once known
        self._sized = True
        # A run of a few tasks whose results the kernel takes (values home, or partials folded at
        # home) has them sent ahead of each task's end: no fetch after the last task.
        self._send_results = False

    def run(self, items: Any, ranges: list[tuple[int, int]] | None = None) -> None:
        """Submit the items (only those in ``ranges`` when given: a resumed run)."""
        if isinstance(items, KeptResults):
            futures = self.submitter.kept(items)
            if self.tree is not None:
                self.tree.fan_in = plan.fan_in_for(len(futures), self.options.fan_in)
                self.tree.add_leaves(futures)
        else:
            self._submit_batches(plan.Batcher(items, ranges))
        if self.tree is not None and not self.driver.stopped.is_set():
            self.tree.fold()

    def _submit_batches(self, batcher: plan.Batcher) -> None:
        sized = batcher.remaining is not None
        threads = self.driver.threads
        bound = max(4, 2 * threads)
        cap = self.options.max_in_flight or (None if sized and self.tree is None else bound)
        self._sized = sized
        self._check_partials = self.tree is not None and not self.options.max_in_flight
        self.max_in_flight = cap
        self._set_fan_in()
        size = self.options.batch
        planned: list[int] = []  # sizes of the batches of a sized input cut by auto batching
        if size is None:
            length = batcher.remaining
            if length is not None and length <= threads * plan.TASKS_PER_THREAD:
                size = 1
            else:
                seconds = self._probe(batcher)
                size = plan.auto_batch_size(batcher.remaining, threads, seconds,
                                            self.options.target_task_seconds, self.options.max_batch)
                if seconds is not None and batcher.remaining:
                    planned = plan.tapered_sizes(batcher.remaining, size, threads, seconds)
        self.batch_size = size
        if size >= number_lists.MIN_ITEMS:  # (begun during the probe, if there was one)
            batcher.start_packing()
        sizes = itertools.chain(planned, itertools.repeat(size))
        if batcher.remaining is not None:
            tasks = self.submitter.map_tasks + (len(planned) or -(-batcher.remaining // size))
            if self.tree is not None:
                self._leaves = tasks
                # Decided once, before the leaves go: a run's shape does not hang on which task ends first.
                self.tree.home = self._folds_at_home()
                self._set_fan_in()
            self._send_results = not self.options.keep and (
                self.tree.home if self.tree is not None else tasks <= FEW_TASKS)
        # With much left to pack, the first round leaves before the rest is packed.
        first_round = threads if batcher.left_to_pack > PIPELINED_PACKING else 0
        while not self.driver.stopped.is_set():
            room = min(self._wait_for_room(), SUBMIT_CHUNK)
            if first_round:
                room = min(room, first_round)
            if room == 0:
                continue
            batches: list[Batch] = []
            while len(batches) < room:
                batch = self._take(batcher, next(sizes))
                if batch is None:
                    break
                batches.append(batch)
            if not batches:
                return
            futures = self._submit_leaves(batches)
            if first_round:  # their dispatch needs the GIL that packing the rest takes
                first_round = 0
                on_scheduler.wait_until_sent(self.submitter.client, futures, PROBE_SEND_SECONDS)

    def _submit_leaves(self, batches: list[Batch]) -> list[Future]:
        """Submit map batches and, with a reducer, lay them into the tree as its next leaves."""
        futures = self.submitter.batches(batches)
        if self.tree is not None:
            self.tree.add_leaves(futures)
        return futures

    def _take(self, batcher: plan.Batcher, size: int) -> Batch | None:
        try:
            batch = batcher.take(size)
        except Exception as exc:
            raise SpecError(f"the iterable raised after {batcher.position:,} items: {type(exc).__name__}: "
                            f"{shorten(str(exc), 200)}; nothing was stored") from exc
        if batch is not None:
            batch.sends_result = self._send_results
        return batch

    def _probe_batch(self, batcher: plan.Batcher, size: int) -> Batch | None:
        batch = self._take(batcher, size)
        if batch is not None and not self.options.keep:
            batch.sends_result = True  # the run may be small or folded at home: the probe decides
        return batch

    def _wait_for_room(self) -> int:
        """Wait until fewer tasks than the bound are in flight (the run's own bound, else
        ``IN_FLIGHT_AT_MOST``); returns how many may be added."""
        wait = 0.0  # first only take what ended: at the run's start nothing is in flight to wait for
        while True:
            self.driver.pump(wait)
            wait = 0.1
            if self.driver.stopped.is_set():
                return 0
            if self._check_partials:
                self._lift_bound_if_partials_small()
            bound = IN_FLIGHT_AT_MOST if self.max_in_flight is None else self.max_in_flight
            room = bound - self.submitter.ledger.in_flight()
            if room > 0:
                return room

    def _lift_bound_if_partials_small(self) -> None:
        """A reduction of small partials (sums, counts) needs no bound: one look at the size of
        the first finished partial decides (one round trip)."""
        finished = [e.key for e in self.submitter.ledger.entries("map") if e.state == "done"]
        if not finished:
            return
        self._check_partials = False
        sizes = identity.task_sizes(self.submitter.client, finished[:1])
        self._partial_bytes = max(sizes.values()) if sizes else LARGE_PARTIAL_BYTES
        self._small_partials = self._partial_bytes < LARGE_PARTIAL_BYTES
        if self._small_partials and self._sized:
            self.max_in_flight = None
            self.driver.follow_leaves_on_scheduler()
        self._set_fan_in()

    def _set_fan_in(self) -> None:
        if self.tree is None:
            return
        if self._small_partials is None or self.tree.home:
            self.tree.fan_in = UNDECIDED_FAN_IN
        else:
            # Large partials are combined in pairs: a reduce task holds its inputs and, for those
            # made on other workers, a copy of each (fan-in 8 over 16 MB arrays: 0.46 GB at peak).
            self.tree.fan_in = self._small_fan_in() if self._small_partials else LARGE_FAN_IN

    def _folds_at_home(self) -> bool:
        """A few partials known to be small (the probe measured one) and a builtin reducer: the
        kernel folds them (a builtin folds small values in microseconds: a stop never waits)."""
        return (bool(self._small_partials) and self._leaves is not None and self._leaves <= ONE_TASK_LEAVES
                and isinstance(self.options.reduce, BuiltinFunctionType) and not self.options.keep)

    def _small_fan_in(self) -> int:
        """Partials per reduce task once they prove small: all of a few leaves; else the wide
        fan-in for the number of leaves, as long as one task's partials stay within
        ``REDUCE_TASK_BYTES``; the configured fan-in at least (the only rule for a generator)."""
        minimum, leaves = self.options.fan_in, self._leaves
        if leaves is None:
            return minimum
        if leaves <= ONE_TASK_LEAVES:
            return max(minimum, leaves)
        by_bytes = REDUCE_TASK_BYTES // max(self._partial_bytes, 1)
        return max(minimum, min(plan.wide_fan_in(leaves), by_bytes))

    def _probe(self, batcher: plan.Batcher) -> float | None:
        """Run and time a few items per thread; returns seconds per item (None if none finished)."""
        threads = self.driver.threads
        size = plan.probe_size(batcher.remaining, threads)
        first = [b for b in (self._probe_batch(batcher, size) for _ in range(max(1, threads))) if b is not None]
        for batch in first:
            batch.probe = True
        if not first:
            return None
        futures = self._submit_leaves(first)
        # A second wave of the same size keeps every thread busy while the timing comes back
        # (slow items would otherwise leave the workers idle for a round trip).
        second: list[Future] = []
        if batcher.remaining is not None and batcher.remaining >= 4 * size * len(first):
            wave = [b for b in (self._probe_batch(batcher, size) for _ in first) if b is not None]
            second = self._submit_leaves(wave)
        if batcher.start_packing():
            # Plain numbers are packed while the probe runs (the workers need nothing from the
            # kernel meanwhile), once its tasks are on their way: each piece holds the GIL 1 ms.
            on_scheduler.wait_until_sent(self.submitter.client, futures + second, PROBE_SEND_SECONDS)
            while not all(future.done() for future in futures) and batcher.pack_piece():
                pass
        finished, finished_batches = [], []
        for future, batch in zip(futures, first):
            while not future.done():
                if self.driver.stopped.is_set():
                    raise KeyboardInterrupt
                self.driver.pump(0.05)
            self.driver.pump(0)
            if future.status != "finished":
                continue
            finished.append(future)
            finished_batches.append(batch)
        if self._check_partials:
            self._lift_bound_if_partials_small()
        timings = self._probe_timings(finished, finished_batches)
        return sum(t for t, _ in timings) / max(1, sum(n for _, n in timings)) if timings else None

    def _probe_timings(self, futures: list[Future], batches: list[Batch]) -> list[tuple[float, int]]:
        """(seconds, items) of the finished probe tasks: from their events (sent ahead of the
        results), else in one round trip that leaves the values on the workers."""
        reported = [self.driver.probe_timing(batch.start) for batch in batches]
        if all(timing is not None for timing in reported):
            return [timing for timing in reported if timing is not None]
        client = self.submitter.client
        return list(client.gather(client.map(_elapsed_of, futures, pure=False)))


def _elapsed_of(result: BatchResult | Partial) -> tuple[float, int]:
    n = len(result.values) + len(result.failures) if isinstance(result, BatchResult) else result.count
    return result.elapsed, n
