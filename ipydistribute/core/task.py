"""What runs on the workers: one batch of items, one step of the tree reduction.

Everything a run ships is in one :class:`~.wire.Payload` (the wire types are in core/wire.py,
the output capture in core/worker_output.py), sent to each worker once (inline in the
graph when small, scattered when large). Each worker prepares it once per run: compiles the
cell, unpickles the captured values, and keeps them in a small cache keyed by the run's token.
"""

from __future__ import annotations

import builtins
import os
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import cloudpickle
from dask.sizeof import sizeof

from . import localmodules, nesting, seeding
from .cellfunc import CompiledCell
from .errors import ItemError, ItemFailure, safe_repr
from .item_watch import watching
from .wire import NOTHING, Batch, BatchResult, Partial, Payload
from .worker_output import captured, current_worker, worker_address

__all__ = ["WORKER_NAMESPACE", "Batch", "BatchResult", "Partial", "Payload", "reduce_partials",
           "combine_partials", "reset_worker_namespace", "run_batch"]

#: Names a ``--all`` cell stored on this worker, seen by every later cell run here.
WORKER_NAMESPACE: dict[str, Any] = {}

_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP_FRAMES = (_ENGINE_DIR,)
_FAILURES_KEPT = 10  # failures a partial carries up the reduction tree; the rest are counted
_FOLD_BYTES = 16 << 20  # values a reducing batch holds before folding them
_FOLD_MAX = 4096  # items per fold at most
#: Results pickled in at most this many bytes go to the kernel ahead of their task's end (the
#: values of a few thousand numbers, a sum): the scheduler keeps the last 1,000 events of a topic,
#: so at most 16 MB; larger ones are fetched. Those over 8 times that in memory are not pickled.
SENT_RESULT_BYTES = 16 * 1024


class _Prepared:
    """A payload made ready to run on this worker."""

    def __init__(self, payload: Payload):
        self.payload = payload
        seeding.isolate_dask_random()
        localmodules.install(payload.modules)  # before unpickling: captured values may import them
        nesting.prepare(payload.cell.source if payload.cell is not None else None)
        self.cell: CompiledCell | None = None
        self.func: Callable[[Any], Any] | None = None
        if payload.cell is not None:
            self.cell = payload.cell.compile()
            payload.cell.register_source()
        if payload.func is not None:
            self.func = cloudpickle.loads(payload.func)
        self.captured = {name: cloudpickle.loads(data) for name, data in payload.captured.items()}
        self.reducer: Callable[[Iterable[Any]], Any] | None = (
            cloudpickle.loads(payload.reducer) if payload.reducer is not None else None
        )
        self.run_items = self._item_loop()
        self.values_of = self._values_function()

    def _item_loop(self) -> Callable[[Sequence[Any], int, Callable[[Any], None]], None]:
        """What runs the items of a batch from ``offset`` on, passing each value to ``append``
        (the :class:`_Cursor` counts the values to know which item runs).

        A one-expression cell is compiled into the loop itself (its namespace is shared by the
        items, since such a cell assigns nothing): about 0.05 us per item. Other cells run as
        module code in a fresh namespace per item.
        """
        cell = self.cell
        if cell is not None and cell.expression is not None and not self.payload.store_names \
                and self.payload.seed is None:
            return cell.loop(self.namespace())  # type: ignore[no-any-return]
        call = self.func if self.func is not None else self._call

        def loop(items: Sequence[Any], offset: int, append: Callable[[Any], None]) -> None:
            for item in islice(items, offset, None):
                append(call(item))

        return loop

    def _values_function(self) -> Callable[[Iterator[Any]], list[Any]] | None:
        """What makes the values of some items in one C-level loop, when nothing needs them one
        by one: a one-expression cell as a comprehension, a function through ``map``. Only for
        runs that end at their first failure (``--on-error raise``, no retries): a failure
        loses the values made before it in the same call, which such a run drops anyway."""
        payload = self.payload
        if payload.on_error != "raise" or payload.retries or payload.seed is not None or payload.store_names:
            return None
        if self.func is not None:
            func = self.func
            return lambda items: list(map(func, items))
        cell = self.cell
        if cell is not None and cell.values is not None:
            return cell.values_function(self.namespace())  # type: ignore[no-any-return]
        return None

    def _call(self, item: Any) -> Any:
        """Run the cell (or the function) once for ``item``, in a fresh namespace."""
        if self.func is not None:
            return self.func(item)
        cell = self.cell
        assert cell is not None
        namespace = self.namespace()
        value = cell.run(namespace, item)
        if self.payload.store_names:
            _store_names(namespace, self)
        return value

    def loop_for(self, start: int) -> Callable[[Sequence[Any], int, Callable[[Any], None]], None]:
        """The item loop of a batch whose first item is item ``start`` of the run: with
        ``--seed``, a loop that seeds each item by its index first (without, the plain loop,
        which pays nothing for seeding)."""
        seed = self.payload.seed
        if seed is None:
            return self.run_items
        call = self._call

        def seeded_loop(items: Sequence[Any], offset: int, append: Callable[[Any], None]) -> None:
            for index, item in enumerate(islice(items, offset, None), start + offset):
                seeding.seed_item(seed, index)
                append(call(item))

        return seeded_loop

    def namespace(self) -> dict[str, Any]:
        ns: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        ns.update(WORKER_NAMESPACE)
        ns.update(self.captured)
        return ns


_PREPARED: OrderedDict[str, _Prepared] = OrderedDict()
_PREPARED_LOCK = threading.Lock()


def _prepare(payload: Payload) -> _Prepared:
    with _PREPARED_LOCK:
        prepared = _PREPARED.get(payload.token)
        if prepared is not None:
            _PREPARED.move_to_end(payload.token)
            return prepared
    prepared = _Prepared(payload)
    with _PREPARED_LOCK:
        _PREPARED[payload.token] = prepared
        while len(_PREPARED) > 16:
            _PREPARED.popitem(last=False)
    return prepared


# --- the task functions ----------------------------------------------------------------------


class _Cursor:
    """Which item of a batch runs now, without a store per item: the loop appends one value per
    item in order, so the item running is the one after the values appended since it started;
    a comprehension appends nothing until it ends, so then the position of the iterator it
    reads tells (:meth:`follow`)."""

    __slots__ = ("values", "base", "start", "iterator", "length")

    def __init__(self, values: list[Any]):
        self.values = values
        self.base = 0  # len(values) when the loop started at item ``start``
        self.start = 0
        self.iterator: Iterator[Any] | None = None
        self.length = 0

    def restart(self, start: int) -> None:
        self.start, self.base, self.iterator = start, len(self.values), None

    def follow(self, iterator: Iterator[Any], length: int) -> None:
        """The items from ``start`` on are read from ``iterator`` (over ``length`` items)."""
        self.iterator, self.length = iterator, length

    def offset(self) -> int:
        if self.iterator is not None:
            return self.start + _position(self.iterator, self.length) - 1
        return self.start + len(self.values) - self.base


def _position(iterator: Iterator[Any], length: int) -> int:
    """How many items ``iterator`` has given, for the iterators of :data:`_POSITIONED` types."""
    hint = getattr(iterator, "__length_hint__", None)
    if hint is not None:
        return length - int(hint())
    state = iterator.__reduce__()  # an array's iterator: (iter, (array,), index); once exhausted (iter, ((),))
    return int(state[2]) if len(state) > 2 else length


#: Sequences whose iterators tell their position (the length left, or the index for arrays).
_POSITIONED = (list, tuple, range, array)


def _items_of(batch: Batch | BatchResult) -> tuple[int, Sequence[Any]]:
    if isinstance(batch, BatchResult):  # kept results of an earlier run, fetched by Dask
        return batch.start, batch.values
    return batch.start, batch.items


def run_batch(batch: Batch | BatchResult, payload: Payload) -> BatchResult | Partial:
    """Run the cell once per item of ``batch``; reduce the batch when the run has a reducer.

    An item that raises runs again, up to ``payload.retries`` times, before it counts as failed;
    its batch-mates do not run again.
    """
    prepared = _prepare(payload)
    worker = worker_address()
    start, items = _items_of(batch)
    values: list[Any] = []
    cursor = _Cursor(values)  # the item running now: read by output capture and on failure
    failures: list[ItemFailure] = []
    error: ItemError | None = None
    attempts: dict[int, int] = {}  # offset -> retries used
    fold = _Fold(prepared.reducer, values, worker) if prepared.reducer is not None else None
    elapsed = 0.0  # stays so if a stop ends the loop (watching swallows it)
    # watching: a stop or --timeout reaches the item running in this thread
    with captured(payload, worker, start, items, cursor), watching(payload, cursor, start, items, worker, run_batch):
        started = time.perf_counter()  # the items' own time: what auto batching sizes tasks by
        offset, count = 0, len(items)
        values_of = prepared.values_of if isinstance(items, _POSITIONED) else None
        while offset < count:
            stop = count if fold is None else min(count, offset + fold.chunk)
            cursor.restart(offset)
            try:
                if values_of is not None:
                    chunk = items if offset == 0 and stop == count else items[offset:stop]
                    iterator = iter(chunk)
                    cursor.follow(iterator, len(chunk))
                    values += values_of(iterator)
                    offset = stop
                elif stop == count:
                    prepared.loop_for(start)(items, offset, values.append)
                else:  # a slice, so the loop stops where the values are folded
                    prepared.loop_for(start + offset)(items[offset:stop], 0, values.append)
                offset = stop
            except (Exception, SystemExit, KeyboardInterrupt) as exc:  # an item must not end the worker
                failed = cursor.offset()
                if attempts.get(failed, 0) < payload.retries:
                    attempts[failed] = attempts.get(failed, 0) + 1
                    offset = failed
                    continue
                failure = ItemFailure.from_exception(exc, start + failed, safe_repr(items[failed]), worker,
                                                     _SKIP_FRAMES)
                if payload.on_error == "raise":
                    error = ItemError(failure)
                    break
                failures.append(failure)
                if payload.on_error == "collect":
                    values.append(failure)
                offset = failed + 1
            if fold is not None:
                fold.fold()
        elapsed = time.perf_counter() - started
    if error is not None:
        # Raised outside the except block: Dask pickles an exception's __context__ (tblib), and the
        # user's exception may not pickle; the failure already carries it as plain data.
        raise error
    result = BatchResult(start, values, failures, elapsed, worker) if fold is None else \
        Partial(values[0] if values else NOTHING, fold.count, failures[:_FAILURES_KEPT], len(failures), elapsed)
    if isinstance(batch, Batch):
        _send_ahead(batch, payload, result)
    return result


def _send_ahead(batch: Batch, payload: Payload, result: BatchResult | Partial) -> None:
    """What the kernel needs before the batch's result comes home, as an event that reaches it
    before the task's end: a probe's timing, and the result itself when small and asked for (a
    small run's values, a partial the kernel folds: no fetch after the last task)."""
    dask_worker = current_worker()
    if not payload.topic or dask_worker is None:
        return
    msg: dict[str, Any] = {"token": payload.token}
    if batch.probe:
        msg["timing"] = (batch.start, result.elapsed, len(batch))
    if batch.sends_result and sizeof(result) <= 8 * SENT_RESULT_BYTES:
        pickled = cloudpickle.dumps(result)
        if len(pickled) <= SENT_RESULT_BYTES:
            msg["result"] = (batch.start, pickled)
    if len(msg) > 1:
        dask_worker.log_event(payload.topic, msg)


class _Fold:
    """Reduces a batch's values as they are made, so a batch holds a few values at a time, not
    all of them: 60 arrays of 16 MB in one batch would otherwise all be alive together.

    The items run in chunks sized from the first value (about ``_FOLD_BYTES`` of values per
    chunk, at most ``_FOLD_MAX`` items: small values cost one reducer call per 4,096 items).
    """

    def __init__(self, reducer: Callable[[Iterable[Any]], Any], values: list[Any], worker: str):
        self.reducer = reducer
        self.values = values
        self.worker = worker
        self.chunk = 1  # the first value sizes the chunks
        self.count = 0  # values folded in

    def fold(self) -> None:
        values = self.values
        if self.chunk == 1 and self.count == 0 and values:
            self.chunk = max(1, min(_FOLD_MAX, _FOLD_BYTES // max(1, int(sizeof(values[-1])))))
        fresh = len(values) - (1 if self.count else 0)
        if fresh:  # the reducer sees every value, also the first, as it did on whole batches
            self.count += fresh
            values[:] = [_reduce(self.reducer, values, self.worker)]


def _store_names(namespace: dict[str, Any], prepared: _Prepared) -> None:
    for name, value in namespace.items():
        if name.startswith("__") or (name in prepared.captured and prepared.captured[name] is value):
            continue
        WORKER_NAMESPACE[name] = value


def _reduce(reducer: Callable[[Iterable[Any]], Any], values: list[Any], where: str) -> Any:
    try:
        return reducer(values)
    except Exception as exc:
        failure = ItemFailure.from_exception(exc, None, "", where, _SKIP_FRAMES)
        failure.item = f"the reducer {safe_repr(reducer, 60)}"
    raise ItemError(failure)  # outside the except block: no __context__ to pickle


def combine_partials(partials: list[Partial], reducer: Callable[[Iterable[Any]], Any], where: str) -> Partial:
    """Combine consecutive partials, in order (a reduce task on a worker, or the kernel's last
    fold of a few small partials); raises :class:`ItemError` when the reducer raises."""
    present = [p for p in partials if p.count]
    failures = [f for p in partials for f in p.failures][:_FAILURES_KEPT]
    failure_count = sum(p.failure_count for p in partials)
    count = sum(p.count for p in present)
    if not present:
        return Partial(NOTHING, 0, failures, failure_count, 0.0)
    value = present[0].value if len(present) == 1 else _reduce(reducer, [p.value for p in present], where)
    return Partial(value, count, failures, failure_count, 0.0)


def reduce_partials(partials: list[Partial], payload: Payload) -> Partial:
    """One node of the tree reduction: combine consecutive partials, in order."""
    started = time.perf_counter()
    prepared = _prepare(payload)
    assert prepared.reducer is not None
    with watching(payload):  # a stop reaches a long reducer here
        combined = combine_partials(partials, prepared.reducer, worker_address())
    combined.elapsed = time.perf_counter() - started
    return combined


def reset_worker_namespace() -> int:
    """Forget what ``--all`` cells stored on this worker; returns how many names were dropped."""
    count = len(WORKER_NAMESPACE)
    WORKER_NAMESPACE.clear()
    return count
