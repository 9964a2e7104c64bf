"""The types that travel between the kernel, the scheduler and the workers.

A run ships one :class:`Payload`; the items go in :class:`Batch` es; a map task returns a
:class:`BatchResult`, a reducing task a :class:`Partial`. They hold data and pickle compactly;
what runs on the workers is core/task.py (the batch loop) and core/worker_output.py (output).
"""

from __future__ import annotations

import pickle
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from dask.sizeof import sizeof

from . import number_lists
from .cellfunc import CellCode
from .errors import ItemFailure
from .kinds import OnError


@dataclass
class Payload:
    """What one run needs on every worker."""

    token: str
    label: str
    cell: CellCode | None = None
    func: bytes | None = None  # cloudpickled callable (the Python API) instead of a cell
    captured: dict[str, bytes] = field(default_factory=dict)
    reducer: bytes | None = None
    on_error: OnError = "raise"
    retries: int = 0  # attempts after the first for each item that raises
    topic: str | None = None  # event topic that carries print() output back to the kernel
    output_limit: int = 64 * 1024  # characters of output kept per item
    store_names: bool = False  # --all: keep the cell's top-level names on the worker
    seed: int | None = None  # --seed: each item seeded from SeedSequence(seed) and its index
    modules: dict[str, Any] = field(default_factory=dict)  # the notebook's own modules, as source
    warning_filters: list[Any] | None = None  # the notebook's warnings.filters (core/item_output.py)
    show_figures: bool = False  # a matplotlib Figure as an item's value is also shown as an image
    timeout: float | None = None  # --timeout: seconds an item may run (item_watch enforces it)

    def pack(self) -> bytes:
        """The payload pickled once for the whole run (call it once the payload is complete)."""
        blob: bytes | None = self.__dict__.get("_blob")
        if blob is None:
            state = {name: value for name, value in self.__dict__.items() if name not in _PACKED_FORMS}
            blob = self.__dict__["_blob"] = cloudpickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        return blob

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """The packed payload, which nothing pickles again: a worker unpacks it once per run
        (``_unpacked_payload``).

        The scheduler pickles each task it sends to a worker, payload included, and Dask pickles
        any task whose pickle holds the bytes ``__main__`` a second time, with cloudpickle; a
        payload names ``__main__`` whenever it carries a function or class of the notebook, or
        IPython's warning filter for ``__main__`` (in every notebook). A small payload travels
        zlib-compressed inside the task's pickle, where those bytes no longer appear; a large one
        (or the rare compressed one that still holds them) as one buffer beside it, which Dask
        does not search but measures for compression, task by task (2,000 one-item tasks: 0.12 s
        of the scheduler's thread).
        """
        packed = self.__dict__.get("_packed")
        if packed is None:
            blob = self.pack()
            packed = zlib.compress(blob, 1) if len(blob) <= CACHED_PAYLOAD_BYTES else None
            if packed is None or b"__main__" in packed:
                packed = b""  # none: sent as a buffer
            self.__dict__["_packed"] = packed
        if packed:
            return (_unpacked_payload, (self.token, packed, True))
        wire: Any = self.pack()
        if isinstance(protocol, int) and protocol >= 5:
            wire = pickle.PickleBuffer(wire)
        return (_unpacked_payload, (self.token, wire))


_PACKED_FORMS = ("_blob", "_packed")  # the payload's pickled and compressed forms, kept once made

#: Payloads up to this size are unpickled once per process and run, and keep their pickle (the
#: scheduler sends them again with each task); a larger one is scattered once (core/submit.py),
#: and keeping its pickle beside its values would double its memory.
CACHED_PAYLOAD_BYTES = 1 << 20
_UNPACKED: OrderedDict[tuple[str, int], Payload] = OrderedDict()  # the payloads of recent runs


def _unpacked_payload(token: str, blob: Any, compressed: bool = False) -> Payload:
    """The payload of a packed blob (unpickled once per process and run when small)."""
    size = memoryview(blob).nbytes
    if size > CACHED_PAYLOAD_BYTES:
        return _payload_of(pickle.loads(blob), None)
    key = (token, size)  # a run's token is random and its payload is packed once
    payload = _UNPACKED.get(key)
    if payload is None:
        data = zlib.decompress(blob) if compressed else bytes(blob)  # not a view of a message's frame
        payload = _UNPACKED[key] = _payload_of(pickle.loads(data), data)
        while len(_UNPACKED) > 16:
            _UNPACKED.popitem(last=False)
    return payload


def _payload_of(state: dict[str, Any], blob: bytes | None) -> Payload:
    payload = Payload.__new__(Payload)
    payload.__dict__.update(state)
    if blob is not None:
        payload.__dict__["_blob"] = blob
    return payload


#: A batch's items at least this large travel out of band (a frame of their own); smaller ones
#: inside the task's pickle, since each frame costs Dask a header and a buffer per message: for
#: 2,000 one-item tasks the frames of tiny batches were about 4% of the scheduler thread's time.
OUT_OF_BAND_BYTES = 64 * 1024


class Batch:
    """Consecutive items of the input, sent as one buffer.

    The kernel packs the items once (:meth:`pack`: plain numbers as machine numbers, see
    core/number_lists.py, anything else pickled); the scheduler, which deserializes every graph it
    receives, then passes them on as bytes instead of unpickling and pickling each item again,
    and the worker unpacks them on first use. A plain class, so Dask does not walk the items
    either.
    """

    __slots__ = ("start", "count", "probe", "sends_result", "first", "_items", "_blob", "_numbers")

    def __init__(self, start: int, items: Sequence[Any] | None, count: int | None = None,
                 blob: Any = None, probe: bool = False, numbers: str | None = None, first: Any = None,
                 sends_result: bool = False):
        self.start = start
        self.first = items[0] if items is not None and len(items) else first  # for the kernel's ledger
        self._items = items
        self._blob = blob
        self._numbers = numbers  # the typecode when the blob holds machine numbers, else None (a pickle)
        self.count = len(items) if items is not None else (count or 0)
        self.probe = probe  # its timing is sent to the kernel as an event, ahead of its result
        # its result too, when small: the kernel then has it with the task's end, without a fetch
        self.sends_result = sends_result

    def __len__(self) -> int:
        return self.count

    @property
    def items(self) -> Sequence[Any]:
        if self._items is None:
            if self._numbers is not None:
                self._items = number_lists.unpack(self._numbers, self._blob)
            else:
                self._items = pickle.loads(self._blob or b"")
            self._blob = None
        return self._items

    def pack(self) -> Any:
        """The items as one buffer (packed once; raises what pickling the items raises)."""
        if self._blob is None:
            numbers = number_lists.pack(self._items) if self._items is not None else None
            if numbers is not None:
                self._numbers, self._blob = numbers
            else:
                self._blob = cloudpickle.dumps(self._items, protocol=pickle.HIGHEST_PROTOCOL)
        return self._blob

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        blob: Any = self.pack()
        handed = getattr(_handing, "handles", None)
        if handed is not None and len(blob) >= OUT_OF_BAND_BYTES:
            # For a scheduler in this process: a handle to the packed items, not a copy of them.
            handle = id(blob)  # the registry keeps the blob, so the id stays its own
            _HANDED[handle] = (self.start, self.count, blob, self.probe, self._numbers, self.sends_result)
            handed.append(handle)
            return (_handed_batch, (handle,))
        if isinstance(protocol, int) and protocol >= 5 and len(blob) >= OUT_OF_BAND_BYTES:
            # Out of band: Dask sends it as its own frame, neither copied into nor scanned with the graph.
            blob = pickle.PickleBuffer(blob)
        elif isinstance(blob, memoryview):  # a view of numbers packed for the whole input
            blob = bytes(blob)
        return (_packed_batch, (self.start, self.count, blob, self.probe, self._numbers, self.sends_result))


def _packed_batch(start: int, count: int, blob: Any, probe: bool = False, numbers: str | None = None,
                  sends_result: bool = False) -> Batch:
    return Batch(start, None, count, blob, probe, numbers, sends_result=sends_result)


# Large batches handed to a scheduler that runs in this process (the embedded cluster's). The
# client pickles a graph and sends it over TCP to its scheduler, which unpickles it: for the
# scheduler in the kernel's own process, 1,000,000 shipped ints crossed as 4.9 MB written and read
# again by the kernel's event loop. Handed over, the scheduler gets the kernel's own packed bytes
# (and sends them on to the workers as before; it keeps them to send again if a worker dies).
_HANDED: dict[int, tuple[int, int, Any, bool, str | None, bool]] = {}  # handle -> _packed_batch's arguments
_handing = threading.local()  # .handles: the handles this thread has handed out, while it hands


@contextmanager
def handing_over(scheduler_here: bool) -> Iterator[None]:
    """While a graph is pickled in this block by this thread for a scheduler in this process
    (``scheduler_here``), its large batches travel as handles; the scheduler takes each once.
    Handles left if the block fails (the graph was not sent) are dropped."""
    if not scheduler_here:
        yield
        return
    handles: list[int] = []
    _handing.handles = handles
    try:
        yield
    except BaseException:
        for handle in handles:
            _HANDED.pop(handle, None)
        raise
    finally:
        _handing.handles = None


def drop_handed() -> None:
    """Forget batches no scheduler took (their scheduler closed with the graph on its way)."""
    _HANDED.clear()


def _handed_batch(handle: int) -> Batch:
    return _packed_batch(*_HANDED.pop(handle))


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


NOTHING = object()  # the value of a Partial that reduced no items


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
        value = None if self.value is NOTHING else self.value
        return (_partial, (value, self.count, self.failures, self.failure_count, self.elapsed))


@sizeof.register(Partial)
def _sizeof_partial(partial: Partial) -> int:
    return (int(sizeof(partial.value)) if partial.count else 0) + 64


def _partial(value: Any, count: int, failures: list[ItemFailure], failure_count: int, elapsed: float) -> Partial:
    return Partial(value if count else NOTHING, count, failures, failure_count, elapsed)
