"""What runs on the workers: one batch of items, one step of the tree reduction.

Everything a run ships is in one :class:`Payload`, sent to each worker once (inline in the
graph when small, scattered when large). Each worker prepares it once per run: compiles the
cell, unpickles the captured values, and keeps them in a small cache keyed by the run's token.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import cloudpickle
from dask.sizeof import sizeof

from . import item_output, localmodules, nesting, seeding
from .cellfunc import CellCode, CompiledCell
from .errors import ItemError, ItemFailure, safe_repr
from .item_watch import watching

#: Names a ``--all`` cell stored on this worker, seen by every later cell run here.
WORKER_NAMESPACE: dict[str, Any] = {}

_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SKIP_FRAMES = (_ENGINE_DIR,)
_FAILURES_KEPT = 10  # failures a partial carries up the reduction tree; the rest are counted
_FLUSH_SECONDS = 0.5
_FOLD_BYTES = 16 << 20  # values a reducing batch holds before folding them
_FOLD_MAX = 4096  # items per fold at most


@dataclass
class Payload:
    """What one run needs on every worker."""

    token: str
    label: str
    cell: CellCode | None = None
    func: bytes | None = None  # cloudpickled callable (the Python API) instead of a cell
    captured: dict[str, bytes] = field(default_factory=dict)
    reducer: bytes | None = None
    on_error: str = "raise"
    retries: int = 0  # attempts after the first for each item that raises
    topic: str | None = None  # event topic that carries print() output back to the kernel
    output_limit: int = 64 * 1024  # characters of output kept per item
    store_names: bool = False  # --all: keep the cell's top-level names on the worker
    seed: int | None = None  # --seed: each item seeded from SeedSequence(seed) and its index
    modules: dict[str, Any] = field(default_factory=dict)  # the notebook's own modules, as source
    warning_filters: list[Any] | None = None  # the notebook's warnings.filters (core/item_output.py)
    show_figures: bool = False  # a matplotlib Figure as an item's value is also shown as an image
    timeout: float | None = None  # --timeout: seconds an item may run (item_watch enforces it)


class Batch:
    """Consecutive items of the input, sent as one pickled buffer.

    The kernel packs the items once (:meth:`pack`); the scheduler, which deserializes every
    graph it receives, then passes them on as bytes instead of unpickling and pickling each
    item again, and the worker unpacks them on first use. A plain class, so Dask does not walk
    the items either.
    """

    __slots__ = ("start", "count", "probe", "_items", "_blob")

    def __init__(self, start: int, items: Sequence[Any] | None, count: int | None = None,
                 blob: Any = None, probe: bool = False):
        self.start = start
        self._items = items
        self._blob = blob
        self.count = len(items) if items is not None else (count or 0)
        self.probe = probe  # its timing is sent to the kernel as an event, ahead of its result

    def __len__(self) -> int:
        return self.count

    @property
    def items(self) -> Sequence[Any]:
        if self._items is None:
            self._items = pickle.loads(self._blob or b"")
            self._blob = None
        return self._items

    def pack(self) -> Any:
        """The items as one buffer (pickled once; raises what pickling the items raises)."""
        if self._blob is None:
            self._blob = cloudpickle.dumps(self._items, protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        blob: Any = self.pack()
        if isinstance(protocol, int) and protocol >= 5:
            # Out of band: Dask sends it as its own frame, neither copied into nor scanned with the graph.
            blob = pickle.PickleBuffer(blob)
        return (_packed_batch, (self.start, self.count, blob, self.probe))


def _packed_batch(start: int, count: int, blob: Any, probe: bool = False) -> Batch:
    return Batch(start, None, count, blob, probe)


class BatchResult:
    """The values of one batch, in order, and the items that failed."""

    __slots__ = ("start", "values", "failures", "elapsed", "worker")

    def __init__(self, start: int, values: list[Any], failures: list[ItemFailure], elapsed: float, worker: str):
        self.start = start
        self.values = values
        self.failures = failures
        self.elapsed = elapsed
        self.worker = worker

    def __len__(self) -> int:
        return len(self.values)


_NOTHING = object()


@sizeof.register(BatchResult)
def _sizeof_batch_result(result: BatchResult) -> int:
    # Dask's memory accounting (spilling, result-limit) must see the values inside.
    return int(sizeof(result.values)) + 64


class Partial:
    """A reduced value of some batches, with the count of items in it and their failures."""

    __slots__ = ("value", "count", "failures", "failure_count", "elapsed")

    def __init__(self, value: Any, count: int, failures: list[ItemFailure], failure_count: int, elapsed: float):
        self.value = value
        self.count = count
        self.failures = failures
        self.failure_count = failure_count
        self.elapsed = elapsed

    def __reduce__(self) -> tuple[Any, ...]:
        value = None if self.value is _NOTHING else self.value
        return (_partial, (value, self.count, self.failures, self.failure_count, self.elapsed))


@sizeof.register(Partial)
def _sizeof_partial(partial: Partial) -> int:
    return (int(sizeof(partial.value)) if partial.count else 0) + 64


def _partial(value: Any, count: int, failures: list[ItemFailure], failure_count: int, elapsed: float) -> Partial:
    return Partial(value if count else _NOTHING, count, failures, failure_count, elapsed)


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


def _worker_address() -> str:
    worker = _current_worker()
    return str(worker.address) if worker is not None else ""


# --- output: print() in a task goes back to the kernel, labelled with the item ----------------

_local = threading.local()


class _RoutedStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr on a worker: a task thread's writes go to its capture."""

    def __init__(self, original: Any, name: str):
        self._original = original
        self._name = name

    def write(self, text: str) -> int:
        capture = getattr(_local, "capture", None)
        if capture is None:
            return int(self._original.write(text))
        capture.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        capture = getattr(_local, "capture", None)
        if capture is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()


def _install_routing() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _RoutedStream):
            sys.stdout = _RoutedStream(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _RoutedStream):
            sys.stderr = _RoutedStream(sys.stderr, "stderr")


class _Capture:
    """Collects one task thread's output while it runs a batch; sent as events by the flusher
    thread every ``_FLUSH_SECONDS`` and at the end of the batch.

    The item that printed is read off the batch's :class:`_Cursor`, so the loop itself pays
    nothing per item for output.
    """

    def __init__(self, topic: str, token: str, worker: str, limit: int, start: int, items: Sequence[Any],
                 cursor: _Cursor):
        self.topic = topic
        self.token = token
        self.worker = worker
        self.dask_worker = _current_worker()  # the flusher thread has no worker context
        self.limit = limit
        self.start = start
        self.items = items
        self.cursor = cursor
        self.lock = threading.Lock()
        self.chunks: list[tuple[int, str, str, dict[str, Any] | None]] = []  # (offset, stream, text, fields)
        self.offset = -1  # the item whose output is being counted
        self.size = 0
        self.dropped = 0

    def write(self, stream: str, text: str) -> None:
        offset = self.cursor.offset()
        with self.lock:
            if offset != self.offset:
                self._note_dropped()
                self.offset, self.size = offset, 0
            room = self.limit - self.size
            if room <= 0:
                self.dropped += len(text)
                return
            if len(text) > room:
                self.dropped += len(text) - room
                text = text[:room]
            self.size += len(text)
            if self.chunks and self.chunks[-1][:2] == (offset, stream) and self.chunks[-1][3] is None:
                self.chunks[-1] = (offset, stream, self.chunks[-1][2] + text, None)
            else:
                self.chunks.append((offset, stream, text, None))
        _ensure_flusher()

    def add(self, offset: int, fields: dict[str, Any], text: str = "") -> None:
        """Send ``fields`` (a display, a warning: see ``core/item_output.py``) in order with the
        output of item ``offset``, unmerged and uncapped by the per-item character limit."""
        with self.lock:
            self.chunks.append((offset, "stderr", text, fields))
        _ensure_flusher()

    def _note_dropped(self) -> None:
        if self.dropped:
            note = f"[... {self.dropped} more characters of output dropped]\n"
            self.chunks.append((self.offset, "stderr", note, None))
            self.dropped = 0

    def close(self) -> None:
        with self.lock:
            self._note_dropped()
        self.flush()

    def flush(self) -> None:
        with self.lock:
            chunks, self.chunks = self.chunks, []
        for offset, stream, text, fields in chunks:
            item = safe_repr(self.items[offset], 60) if 0 <= offset < len(self.items) else ""
            _send_event(self.dask_worker, self.topic, {"token": self.token, "index": self.start + offset, "item": item,
                                                       "worker": self.worker, "stream": stream, "text": text,
                                                       **(fields or {})})


_active_captures: set[_Capture] = set()
_flusher: threading.Thread | None = None


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None or not _flusher.is_alive():
        with _install_lock:
            if _flusher is None or not _flusher.is_alive():
                _flusher = threading.Thread(target=_flush_loop, name="ipydistribute-output", daemon=True)
                _flusher.start()


def _flush_loop() -> None:
    while True:
        time.sleep(_FLUSH_SECONDS)
        for capture in list(_active_captures):
            capture.flush()


def _current_worker() -> Any:
    try:
        from distributed import get_worker

        return get_worker()
    except ValueError:  # not inside a task on a worker (direct calls in tests)
        return None


def _send_event(worker: Any, topic: str, msg: dict[str, Any]) -> None:
    if worker is not None:
        worker.log_event(topic, msg)
        return
    target = sys.__stdout__ if msg["stream"] == "stdout" else sys.__stderr__
    if target is not None:
        target.write(msg["text"])


class _captured:
    """Context manager: route this thread's prints to a capture for the duration of a batch."""

    def __init__(self, payload: Payload, worker: str, start: int, items: Sequence[Any], cursor: _Cursor):
        self.payload = payload
        self.capture = (_Capture(payload.topic, payload.token, worker, payload.output_limit, start, items, cursor)
                        if payload.topic else None)

    def __enter__(self) -> _Capture | None:
        if self.capture is not None:
            _install_routing()
            self.previous = getattr(_local, "capture", None)
            _local.capture = self.capture
            _active_captures.add(self.capture)
            item_output.enter(self.capture, self.payload)
        return self.capture

    def __exit__(self, *exc: object) -> None:
        if self.capture is not None:
            item_output.leave(self.capture)
            _local.capture = self.previous
            _active_captures.discard(self.capture)
            self.capture.close()


# --- the task functions ----------------------------------------------------------------------


class _Cursor:
    """Which item of a batch runs now, without a store per item: the loop appends one value per
    item in order, so the item running is the one after the values appended since it started."""

    __slots__ = ("values", "base", "start")

    def __init__(self, values: list[Any]):
        self.values = values
        self.base = 0  # len(values) when the loop started at item ``start``
        self.start = 0

    def restart(self, start: int) -> None:
        self.start, self.base = start, len(self.values)

    def offset(self) -> int:
        return self.start + len(self.values) - self.base


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
    worker = _worker_address()
    start, items = _items_of(batch)
    values: list[Any] = []
    cursor = _Cursor(values)  # the item running now: read by output capture and on failure
    failures: list[ItemFailure] = []
    error: ItemError | None = None
    attempts: dict[int, int] = {}  # offset -> retries used
    fold = _Fold(prepared, values, worker) if prepared.reducer is not None else None
    elapsed = 0.0  # stays so if a stop ends the loop (watching swallows it)
    # watching: a stop or --timeout reaches the item running in this thread
    with _captured(payload, worker, start, items, cursor), watching(payload, cursor, start, items, worker):
        started = time.perf_counter()  # the items' own time: what auto batching sizes tasks by
        offset, count = 0, len(items)
        while offset < count:
            stop = count if fold is None else min(count, offset + fold.chunk)
            cursor.restart(offset)
            try:
                if stop == count:
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
    dask_worker = _current_worker()
    if isinstance(batch, Batch) and batch.probe and payload.topic and dask_worker is not None:
        dask_worker.log_event(payload.topic, {"token": payload.token, "timing": (start, elapsed, len(items))})
    if fold is None:
        return BatchResult(start, values, failures, elapsed, worker)
    value = values[0] if values else _NOTHING
    return Partial(value, fold.count, failures[:_FAILURES_KEPT], len(failures), elapsed)


class _Fold:
    """Reduces a batch's values as they are made, so a batch holds a few values at a time, not
    all of them: 60 arrays of 16 MB in one batch would otherwise all be alive together.

    The items run in chunks sized from the first value (about ``_FOLD_BYTES`` of values per
    chunk, at most ``_FOLD_MAX`` items: small values cost one reducer call per 4,096 items).
    """

    def __init__(self, prepared: _Prepared, values: list[Any], worker: str):
        self.prepared = prepared
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
            values[:] = [_reduce(self.prepared, values, self.worker)]


def _store_names(namespace: dict[str, Any], prepared: _Prepared) -> None:
    for name, value in namespace.items():
        if name.startswith("__") or (name in prepared.captured and prepared.captured[name] is value):
            continue
        WORKER_NAMESPACE[name] = value


def _reduce(prepared: _Prepared, values: list[Any], worker: str) -> Any:
    assert prepared.reducer is not None
    try:
        return prepared.reducer(values)
    except Exception as exc:
        failure = ItemFailure.from_exception(exc, None, "", worker, _SKIP_FRAMES)
        failure.item = f"the reducer {safe_repr(prepared.reducer, 60)}"
    raise ItemError(failure)  # outside the except block: no __context__ to pickle


def reduce_partials(partials: list[Partial], payload: Payload) -> Partial:
    """One node of the tree reduction: combine consecutive partials, in order."""
    started = time.perf_counter()
    prepared = _prepare(payload)
    present = [p for p in partials if p.count]
    failures = [f for p in partials for f in p.failures][:_FAILURES_KEPT]
    failure_count = sum(p.failure_count for p in partials)
    count = sum(p.count for p in present)
    if not present:
        return Partial(_NOTHING, 0, failures, failure_count, 0.0)
    with watching(payload):  # a stop reaches a long reducer here
        value = present[0].value if len(present) == 1 else _reduce(prepared, [p.value for p in present],
                                                                    _worker_address())
    return Partial(value, count, failures, failure_count, time.perf_counter() - started)


def reset_worker_namespace() -> int:
    """Forget what ``--all`` cells stored on this worker; returns how many names were dropped."""
    count = len(WORKER_NAMESPACE)
    WORKER_NAMESPACE.clear()
    return count
