"""A failed item run again in the kernel, for ``%debug`` and :meth:`ItemFailure.rerun`.

The run attaches an :class:`ItemReplay` to each failure it reports (kernel side only: it holds
the run's payload and its input, never pickled). A re-run executes the cell as a worker does:
module code in a fresh namespace holding the captured values, unpickled from the bytes taken at
submit time (so later changes in the notebook do not reach it), and the item, read again from the
run's input by its position. Names a ``--all`` cell set up on the workers are not in the kernel:
those the cell reads are fetched from the worker that ran the item, when they can be pickled.

The exception a re-run raises keeps the frames from the cell's own down (the engine's are cut),
so pdb opens at the failing line with the item's names.
"""

from __future__ import annotations

import builtins
import functools
import os
import types
import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import cloudpickle

from .errors import ItemFailure, SpecError, safe_repr
from .kept import KeptResults
from .kinds import Mode
from .wire import Payload

_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ItemReplay:
    """Re-runs failed items of one run; set on its failures by :func:`attach_replay`."""

    def __init__(self, client: Any, payload: Payload, items: Any, mode: Mode):
        self.client = client
        self.payload = payload
        self.items = items  # the run's input (None with no loop: --all, or a cell run once)
        self.mode = mode  # map, single, all

    def __call__(self, failure: ItemFailure) -> Any:
        """Run ``failure``'s item here; returns its value or raises its exception."""
        __tracebackhide__ = True
        item = self.item(failure)
        note = self.changed_note(failure, item)
        if note is not None:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
        run = self._function(failure.worker)
        try:
            return run(item)
        except BaseException as exc:  # the item's own exception, whatever it is
            error = exc
        error.__traceback__ = from_user_code(error.__traceback__)
        raise error  # outside the except block: no engine exception chained to it

    def unavailable(self, failure: ItemFailure) -> str | None:
        """Why ``failure`` cannot be re-run here (one line), or None when it can."""
        if failure.index is None or failure.item.startswith("the reducer"):
            return (f"{failure.where()} cannot be re-run here: the reducer ran on partial results that live "
                    "on the cluster; call it in the notebook on a few values to debug it")
        if self.mode == "map" and (isinstance(self.items, Iterator) or not hasattr(self.items, "__len__")):
            return (f"item #{failure.index} came from a generator, which the run used up: it cannot be re-run "
                    "here; give the cell a list (or a range) to re-run and debug its items")
        return None

    def hint(self, failure: ItemFailure) -> str | None:
        """How to debug ``failure``: the last line of its CellError (None when it cannot be re-run)."""
        if self.unavailable(failure) is not None:
            return None
        what = f"item #{failure.index}" if self.mode == "map" else "the cell"
        does = f"re-runs {what} here in the kernel and opens pdb at its failing line"
        if _debug_magic_loaded():
            return f"%debug {does}."
        return f"After `%load_ext ipydistribute`, %debug {does}."

    def item(self, failure: ItemFailure) -> Any:
        """The item of ``failure``, read again from the run's input; SpecError when it cannot be."""
        reason = self.unavailable(failure)
        if reason is not None:
            raise SpecError(reason)
        if self.mode != "map" or failure.index is None:
            return None
        index = failure.index
        items = self.items
        if isinstance(items, KeptResults):
            return _kept_item(items, index)
        try:
            if isinstance(items, (list, tuple, range)) or type(items).__module__ == "numpy":
                return next(iter(items[index:index + 1]))  # as the batches are cut: the item that was sent
            return next(islice(iter(items), index, None))
        except StopIteration:
            raise SpecError(f"item #{index} is no longer in the input (it has {len(items):,} items now): "
                            "it cannot be re-run") from None

    def changed_note(self, failure: ItemFailure, item: Any) -> str | None:
        """A line when the item read now does not look like the one that failed (the input
        was changed since the run), else None."""
        now = safe_repr(item)
        if self.mode != "map" or now == failure.item or " at 0x" in now:  # an address differs per copy
            return None
        return (f"item #{failure.index} of the input is now {safe_repr(item, 60)}; it was "
                f"{failure.item[:60]} when it failed: the input changed since the run")

    def _function(self, worker: str) -> Any:
        payload = self.payload
        if payload.func is not None:
            return cloudpickle.loads(payload.func)
        assert payload.cell is not None
        cell = payload.cell
        compiled = cell.compile()
        cell.register_source()  # pdb's `list`
        namespace = self.namespace(worker)
        return functools.partial(compiled.run, namespace)

    def namespace(self, worker: str = "") -> dict[str, Any]:
        """What the cell saw on ``worker``: the captured values as submitted, and the names a
        ``--all`` cell set up there (fetched from it), less those that cannot travel."""
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        namespace.update(self.worker_names(worker))
        namespace.update({name: cloudpickle.loads(data) for name, data in self.payload.captured.items()})
        return namespace

    def missing_names(self) -> list[str]:
        """Names the cell reads that were neither captured nor builtins: set up on the workers."""
        if self.payload.cell is None:
            return []
        return sorted(n for n in self.payload.cell.read_names
                      if n not in self.payload.captured and not hasattr(builtins, n))

    def worker_names(self, worker: str = "") -> dict[str, Any]:
        """The names the cell reads from ``WORKER_NAMESPACE``, as ``worker`` (else any) holds them."""
        names = self.missing_names()
        if not names or self.client is None:
            return {}
        try:
            found = self.client.run(_pickled_worker_names, names, workers=[worker] if worker else None)
        except Exception:  # the worker (or the cluster) is gone: the re-run then says which name is missing
            return {}
        values: dict[str, Any] = {}
        for pickled in found.values():
            for name, data in pickled.items():
                if name not in values:
                    values[name] = cloudpickle.loads(data)
        return values


def _debug_magic_loaded() -> bool:
    """Whether this IPython's %debug is ipydistribute's (loaded with the extension)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    owner = getattr(shell.magics_manager.magics["line"].get("debug"), "__self__", None) if shell else None
    return type(owner).__name__ == "DebugMagics"


def _pickled_worker_names(names: list[str]) -> dict[str, bytes]:
    """On a worker: the names of ``WORKER_NAMESPACE`` asked for that can be pickled."""
    from .task import WORKER_NAMESPACE

    found = {}
    for name in names:
        if name in WORKER_NAMESPACE:
            try:
                found[name] = cloudpickle.dumps(WORKER_NAMESPACE[name])
            except Exception:  # a connection, a lock: the re-run reports the name as missing
                continue
    return found


def _kept_item(kept: KeptResults, index: int) -> Any:
    start = 0
    for future, length in zip(kept.futures, kept.lengths):
        if index < start + length:
            return future.result().values[index - start]
        start += length
    raise SpecError(f"item #{index} was a result kept on the cluster, since released: "
                    "it cannot be re-run here")


def from_user_code(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` from its first frame outside this package on: the cell's frame, for a re-run."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename.startswith(_ENGINE_DIR):
        first = first.tb_next
    return first if first is not None else tb


def attach_replay(failures: Iterable[ItemFailure], client: Any, payload: Payload, items: Any, mode: Mode) -> None:
    """Let ``failures`` (of a run in this kernel) re-run their items: called by the run as it
    reports them. Costs nothing until a re-run."""
    replay = ItemReplay(client, payload, items, mode)
    for failure in failures:
        if failure.replay is None:
            failure.replay = replay


def describe_rerun(failure: ItemFailure, label: str) -> str:
    """The first line ``%debug`` prints before it re-runs a failed item."""
    replay = failure.replay
    what = "the cell" if isinstance(replay, ItemReplay) and replay.mode != "map" else \
        f"item #{failure.index} ({failure.item[:60]})"
    return (f"%debug: re-running {what} of {label} here in the kernel, with the values the cell captured "
            f"when it was submitted (it raised {failure.exc_type} on the cluster)")
