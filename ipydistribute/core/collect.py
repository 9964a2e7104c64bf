"""Bringing a run's results home: map values streamed into the kernel as their tasks finish (so
a worker lost late costs only its unfinished items), and the final value of each kind of run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

import cloudpickle
from dask.sizeof import sizeof
from dask.utils import format_bytes
from distributed import Future

from . import config, identity
from .checkpoint import CheckpointStore, Resume
from .errors import ItemFailure, SpecError, safe_repr
from .kept import KeptResults, KeptValue
from .ledger import Ledger
from .submit import Submitter
from .task import combine_partials
from .wire import BatchResult, Partial

if TYPE_CHECKING:
    from .kinds import Mode
    from .options import RunOptions

#: Finished map tasks are fetched together at most this often (one round trip per fetch: 10,000
#: one-item tasks would otherwise cost a round trip each).
FETCH_INTERVAL = 0.05
#: A fetch that takes longer than this checks that the run's workers remain, then goes on: a
#: value whose only holder died is computed again by Dask, and waited for, which for a task
#: restricted to that worker meant waiting forever.
SLOW_FETCH_SECONDS = 5.0


class Collector:
    def __init__(self, submitter: Submitter, ledger: Ledger, options: RunOptions, label: str,
                 streams: bool, checkpoint: tuple[CheckpointStore, Resume] | None = None,
                 while_slow: Callable[[], None] | None = None):
        self.submitter = submitter
        self.ledger = ledger
        self.options = options
        self.label = label
        self.streams = streams  # map values come home as they finish
        self.warnings: list[str] = []
        self.failures: list[ItemFailure] = []
        self._waiting: list[Future] = []
        self._last_fetch = 0.0
        self._home_bytes = 0
        self._limit = config.nbytes("result-limit")
        self._salvaged: dict[Hashable, BatchResult] = {}  # --keep: results whose worker restarted
        self.checkpoint = checkpoint  # where values are stored as they come home, and what was stored
        self._while_slow = while_slow  # called while a fetch waits (raises when the run is lost)
        #: batch start -> pickled result, sent by the workers ahead of their tasks' ends (the run's
        #: inbox, core/events.py)
        self.sent: dict[int, bytes] = {}

    # --- while the run goes --------------------------------------------------------------------

    def finished(self, future: Future) -> None:
        """A map task finished: its values will come home with the next fetch."""
        if self.streams:
            self._waiting.append(future)

    def fetch(self, force: bool = False) -> None:
        """Bring the waiting values home (at most every ``FETCH_INTERVAL`` unless ``force``)."""
        if not self._waiting or (not force and time.monotonic() - self._last_fetch < FETCH_INTERVAL):
            return
        futures, self._waiting = self._waiting, []
        self._last_fetch = time.monotonic()
        results: list[BatchResult] = self._results(futures)
        keys: list[Hashable] = []
        for future, result in zip(futures, results):
            self._home_bytes += int(sizeof(result))
            self.ledger.home(future.key, result)
            keys.append(future.key)
            self._store(future.key)
        self.submitter.release(keys)
        if self._home_bytes > self._limit:
            raise self._too_large(self._home_bytes)

    def _results(self, futures: list[Future]) -> list[Any]:
        """The results of these finished tasks: those their workers sent ahead (core/task.py,
        ``_send_ahead``) are here already, the others are gathered."""
        starts = [entry.start if (entry := self.ledger.get(f.key)) is not None else None for f in futures]
        sent = [self.sent.pop(start, None) if start is not None else None for start in starts]
        missing = [future for future, blob in zip(futures, sent) if blob is None]
        gathered = iter(self._gather(missing) if missing else [])
        return [cloudpickle.loads(blob) if blob is not None else next(gathered) for blob in sent]

    def _gather(self, futures: list[Future]) -> Any:
        client = self.submitter.client
        while True:
            try:
                return client.sync(_gather_within, client, futures, SLOW_FETCH_SECONDS)
            except asyncio.TimeoutError:
                if self._while_slow is not None:
                    self._while_slow()

    def _store(self, key: Hashable) -> None:
        if self.checkpoint is None:
            return
        store, resumed = self.checkpoint
        entry = self.ledger.get(key)
        assert entry is not None
        store.save([(index, resumed.hashes[index], value) for index, value in entry.indexed_values()
                    if not isinstance(value, ItemFailure)])

    def close(self) -> None:
        if self.checkpoint is not None:
            self.checkpoint[0].close()

    def salvage(self, key: Hashable, result: BatchResult) -> None:
        """The result of a task that ended with its worker (an item stuck past --timeout)."""
        if self.options.keep:
            self._salvaged[key] = result
            return
        self.ledger.salvage(key, result)
        self._store(key)

    # --- at the end ----------------------------------------------------------------------------

    def value(self, mode: Mode, root: Future | None, reducer: bytes | None, home_leaves: list[Future]) -> Any:
        """The run's value; a reduction's from its root, or from ``home_leaves`` folded here."""
        if mode == "all":
            results = self.submitter.client.gather(self.submitter.map_futures)
            return {r.worker: r.values[0] for r in results}
        if reducer is not None:
            return self._reduced(root, reducer, home_leaves)
        if self.options.keep:
            lengths = [e.count for e in self.ledger.entries("map")]
            client = self.submitter.client
            kept = [client.scatter(self._salvaged[f.key], hash=False) if f.key in self._salvaged else f
                    for f in self.submitter.map_futures]
            return KeptResults(client, kept, lengths, self.label)
        self.fetch(force=True)
        batches = self.ledger.results_in_order()
        failures = [f for batch in batches for f in batch.failures]
        if self.checkpoint is not None:
            by_index = dict(self.checkpoint[1].done)
            by_index.update(pair for e in self.ledger.entries("map") for pair in e.indexed_values())
            values = [by_index[i] for i in sorted(by_index)]
        else:
            values = [value for batch in batches for value in batch.values]
        self._note_skipped(failures, len(failures))
        if mode == "single":
            return values[0] if values else None
        return values

    def _reduced(self, root: Future | None, reducer: bytes, home_leaves: list[Future]) -> Any:
        if home_leaves:
            partial = self._folded_at_home(home_leaves)
        elif root is None:  # no items at all
            return _reduce_empty(reducer)
        elif self.options.keep:
            return KeptValue(root, self.label)
        else:
            sizes = identity.task_sizes(self.submitter.client, [root.key])
            total = sum(sizes.values())
            if total > self._limit:
                raise self._too_large(total)
            partial = root.result()
        self._note_skipped(partial.failures, partial.failure_count)
        if partial.count == 0:
            return _reduce_empty(reducer)
        return partial.value

    def _folded_at_home(self, leaves: list[Future]) -> Partial:
        """The last fold of a few small partials, in the kernel (core/reduction.py)."""
        partials: list[Partial] = self._results(leaves)
        total = sum(int(sizeof(partial)) for partial in partials)
        if total > self._limit:
            raise self._too_large(total)
        assert self.options.reduce is not None
        return combine_partials(partials, self.options.reduce, "the kernel")

    def _too_large(self, total: int) -> SpecError:
        return SpecError(
            f"the results of {self.label} are {format_bytes(total)}, more than the "
            f"{format_bytes(self._limit)} ipydistribute.result-limit allows into the kernel: leave them on "
            "the cluster with --keep (then reduce them or gather parts), reduce them with --reduce, "
            "or raise the limit with dask.config.set({'ipydistribute.result-limit': '8GiB'})")

    def _note_skipped(self, failures: list[ItemFailure], count: int) -> None:
        if not count:
            return
        self.failures.extend(failures)
        if self.options.on_error == "skip":
            first = failures[0] if failures else None
            detail = f"; first: {first.exc_type}: {first.message} ({first.where()})" if first else ""
            self.warnings.append(f"{count} item(s) of {self.label} failed and were skipped{detail}")


def _reduce_empty(reducer_bytes: bytes) -> Any:
    reducer = cloudpickle.loads(reducer_bytes)
    try:
        return reducer([])
    except Exception as exc:
        raise SpecError(f"no item produced a value, and the reducer {safe_repr(reducer, 60)} "
                        f"fails on nothing ({type(exc).__name__}: {exc}); give it a default") from None


async def _gather_within(client: Any, futures: list[Future], seconds: float) -> Any:
    return await asyncio.wait_for(client.gather(futures, asynchronous=True), seconds)
