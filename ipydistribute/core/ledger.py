"""The ledger of a run: what became of every task and the items it carries.

Pure bookkeeping, no Dask: the run records each task it submits (its key, the items it carries,
its role), each task that ends, and each map result brought home. Views read counts off it; the
run reads from it which items are still open when it is cancelled or loses workers, and the
values in item order at the end. Thread-safe: the driver thread writes, views read.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

#: What a task is for: a batch of items (``map``), the one run of a cell without items
#: (``single``), the run on one worker of ``--all``, or a node of the tree reduction.
Role = Literal["map", "single", "all", "reduce"]
#: ``submitted`` until the scheduler says it ended; ``home`` once its values are in the kernel.
TaskState = Literal["submitted", "done", "home", "failed", "cancelled"]

_ITEM_ROLES: tuple[Role, ...] = ("map", "single", "all")


@dataclass(slots=True)  # one per task: no __dict__ for the garbage collector to track
class Entry:
    """One task of the run."""

    key: Hashable
    role: Role
    start: int  # index of its first item
    count: int  # items it carries (0 for a reduce task)
    first_item: Any = None  # for messages about the task ("item #3 (0.5)")
    state: TaskState = "submitted"
    result: Any = None  # its BatchResult once brought home

    @property
    def items(self) -> range:
        return range(self.start, self.start + self.count)

    def indexed_values(self) -> list[tuple[int, Any]]:
        """``(index, value)`` of the items brought home; items skipped by ``--on-error skip``
        have no value (``--on-error collect`` puts the failure in its place)."""
        result = self.result
        if result is None:
            return []
        if len(result.values) == self.count:
            return list(zip(self.items, result.values))
        missing = {f.index for f in result.failures}
        return list(zip((i for i in self.items if i not in missing), result.values))


class Ledger:
    """Every task of one run, in submission order."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, Entry] = {}
        self._lock = threading.Condition()
        self.tasks_submitted = 0
        self.tasks_done = 0
        self.tasks_failed = 0
        self.items_done = 0
        self._open = 0  # tasks submitted and not ended: read once per driver step, so counted
        self._arrived: list[Entry] = []  # map entries brought home, in arrival order

    # --- writing (driver thread) ---------------------------------------------------------------

    def add(self, key: Hashable, role: Role, start: int = 0, count: int = 0, first_item: Any = None) -> Entry:
        entry = Entry(key, role, start, count, first_item)
        with self._lock:
            self._entries[key] = entry
            self.tasks_submitted += 1
            self._open += 1
        return entry

    def ended(self, key: Hashable, status: str) -> Entry | None:
        """Record the end of a task as Dask reports it (``finished``, ``error``, ``cancelled``)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state != "submitted":
                return entry
            self._open -= 1
            if status == "finished":
                entry.state = "done"
                self.tasks_done += 1
                if entry.role in _ITEM_ROLES:
                    self.items_done += entry.count
            elif status == "error":
                entry.state = "failed"
                self.tasks_failed += 1
            else:
                entry.state = "cancelled"
            return entry

    def home(self, key: Hashable, result: Any) -> None:
        """The values of a finished map task are in the kernel now."""
        with self._lock:
            entry = self._entries[key]
            entry.state = "home"
            entry.result = result
            self._arrived.append(entry)
            self._lock.notify_all()

    def salvage(self, key: Hashable, result: Any) -> None:
        """A task that failed (its worker restarts) brought its batch's result back with the error."""
        with self._lock:
            entry = self._entries[key]
            if entry.state == "failed":
                self.tasks_failed -= 1
                self.tasks_done += 1
                self.items_done += entry.count
        self.home(key, result)

    def cancel_open(self) -> list[Entry]:
        """Mark every task still submitted as cancelled; returns them."""
        with self._lock:
            open_ = [e for e in self._entries.values() if e.state == "submitted"]
            for entry in open_:
                entry.state = "cancelled"
            self._open = 0
            self._lock.notify_all()
            return open_

    def forget_results(self) -> None:
        with self._lock:
            for entry in self._entries.values():
                entry.result = None

    def wake(self) -> None:
        """Wake readers waiting for arrivals (the run ended)."""
        with self._lock:
            self._lock.notify_all()

    # --- reading -------------------------------------------------------------------------------

    def get(self, key: Hashable) -> Entry | None:
        return self._entries.get(key)

    def entries(self, *roles: Role) -> list[Entry]:
        with self._lock:
            return [e for e in self._entries.values() if not roles or e.role in roles]

    def in_flight(self) -> int:
        return self._open

    def open_items(self) -> list[int]:
        """Indices of the items whose task has not ended (sorted)."""
        return sorted(i for e in self.entries(*_ITEM_ROLES) if e.state == "submitted" for i in e.items)

    def finished_items(self) -> int:
        return self.items_done

    def results_in_order(self) -> list[Any]:
        """The BatchResults brought home, in item order."""
        return [e.result for e in sorted(self.entries("map", "single"), key=lambda e: e.start)
                if e.state == "home"]

    def arrivals(self, done: threading.Event, poll: float = 0.1) -> Iterator[Entry]:
        """Map entries as they come home, until ``done`` is set and all have been seen."""
        seen = 0
        while True:
            with self._lock:
                while seen >= len(self._arrived) and not done.is_set():
                    self._lock.wait(poll)
                fresh = self._arrived[seen:]
                seen = len(self._arrived)
            yield from fresh
            if not fresh and done.is_set():
                return
