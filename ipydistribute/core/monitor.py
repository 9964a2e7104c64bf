"""What the scheduler knows about one run, asked for from the client in small pieces.

The scheduler side is a plugin of its own module (core/scheduler_plugin.py, which travels by
value); this is the client side: it registers the plugin once per scheduler and asks, a few times a second, for a
:class:`Snapshot` of one token: its size grows with the number of groups and workers, plus the
task stream bars that are new since the last call (capped); the per-task states come along only
while the run has at most ``task_limit`` tasks, for a graph that draws each task.

Nothing here imports IPython or widgets; the views in ``ipydistribute.widgets`` draw snapshots.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from distributed import Client

from . import keys, scheduler_plugin
from .cluster_snapshot import WorkerRow, worker_row
from .keys import parse_key
from .on_scheduler import ask_scheduler, in_process_scheduler
from .scheduler_plugin import (
    CODES,
    PLUGIN_NAME,
    STATES,
    STREAM_PER_SNAPSHOT,
    TASK_LIMIT,
    RunMonitorPlugin,
    forget_on_scheduler,
    snapshot_on_scheduler,
)

__all__ = ["CODES", "STATES", "TASK_LIMIT", "Bar", "GroupSnapshot", "RunMonitor", "Snapshot", "WorkerRow",
           "ensure_plugin", "in_process_scheduler", "parse_key"]


def register_by_value() -> None:
    """Ship the plugin's code (and the key format it reads) to the scheduler, which need not
    have ipydistribute installed."""
    for module in (scheduler_plugin, keys):
        if module.__name__ not in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.register_pickle_by_value(module)


_registered_on: set[tuple[str, str]] = set()


def ensure_plugin(client: Client) -> str | None:
    """Register the monitor plugin on the client's scheduler once; returns why not, or None."""
    where = (str(client.id), str(getattr(client.scheduler, "address", "")))
    if where in _registered_on:
        return None
    try:
        register_by_value()
        client.register_plugin(RunMonitorPlugin(), name=PLUGIN_NAME)
    except Exception as exc:  # scheduler refuses pickled code, or is gone: the view says why
        return f"the scheduler did not accept the monitor ({type(exc).__name__}: {exc})"
    _registered_on.add(where)
    return None


# --- the client side -------------------------------------------------------------------------

@dataclass
class GroupSnapshot:
    """One task group of the run: counts per state, compute time, and (few tasks) each task."""

    name: str
    role: str
    counts: dict[str, int]
    deps: list[str]
    duration: float
    start: float
    stop: float
    states: str | None = None  # one letter of CODES per task, when the run is small
    edges: dict[int, list[tuple[str, int]]] | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        return self.counts.get("memory", 0) + self.counts.get("erred", 0)

    @property
    def level(self) -> int:
        """Column of the group in a left-to-right layout: map 0, reduce level L at L."""
        digits = "".join(c for c in self.role if c.isdigit())
        return int(digits) if digits and self.role.startswith("reduce") else 0


@dataclass
class Bar:
    """One task in the task stream."""

    group: str
    index: int
    lane: int
    start: float
    stop: float
    erred: bool


@dataclass
class Snapshot:
    """What a view draws: the run's groups, new task stream bars, and the workers now."""

    now: float
    groups: list[GroupSnapshot]
    workers: list[WorkerRow]
    new_bars: list[Bar]
    lanes: list[tuple[str, int]]
    task_time: float
    first_start: float
    last_stop: float
    total: int
    skipped_bars: int = 0
    unavailable: str | None = None  # why the scheduler's side is missing

    @property
    def per_task(self) -> bool:
        return bool(self.groups) and all(g.states is not None for g in self.groups)

    def counts(self) -> dict[str, int]:
        totals = dict.fromkeys(STATES, 0)
        for g in self.groups:
            for state, n in g.counts.items():
                totals[state] += n
        return totals


@dataclass
class RunMonitor:
    """Polls the scheduler for one run's snapshot; call :meth:`poll` from one thread."""

    client: Client
    token: str
    workers: list[str] | None = None
    cursor: int = 0
    unavailable: str | None = None
    last: Snapshot | None = None
    _registered: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        # Register at once: transitions before the plugin exists reach it without timings.
        self._registered = True
        self.unavailable = ensure_plugin(self.client)

    def poll(self, since: int | None = None, limit: int = STREAM_PER_SNAPSHOT) -> Snapshot:
        """A new snapshot with the stream bars since the last poll (or since cursor ``since``);
        the previous one again, with no new bars, when the scheduler fails."""
        raw = None
        if self.unavailable is None:
            try:
                raw = ask_scheduler(self.client, snapshot_on_scheduler, token=self.token,
                                since=self.cursor if since is None else since, workers=self.workers,
                                limit=limit)
            except Exception as exc:  # the cluster went away mid-run: keep the last picture
                self.unavailable = f"the scheduler stopped answering ({type(exc).__name__})"
            else:
                if raw is None:
                    self.unavailable = "the monitor plugin is missing on the scheduler"
        snapshot = self._parse(raw) if raw is not None else self._stale()
        self.last = snapshot
        return snapshot

    def forget(self) -> None:
        """Drop the run's record on the scheduler (the view keeps its last snapshot)."""
        if self.unavailable is None and self._registered:
            try:
                ask_scheduler(self.client, forget_on_scheduler, token=self.token)
            except Exception:  # the cluster is gone: nothing is left to forget
                pass

    def _parse(self, raw: dict[str, Any]) -> Snapshot:
        self.cursor = int(raw["cursor"])
        groups = [GroupSnapshot(g["name"], g["role"], g["counts"], g["deps"], g["duration"],
                                g["start"], g["stop"], g["states"], _edges(g["edges"]))
                  for g in raw["groups"]]
        workers = [worker_row(address, info) for address, info in raw["workers"].items()]
        bars = [Bar(*b) for b in raw["stream"]]
        return Snapshot(raw["now"], groups, workers, bars, [(w, t) for w, t in raw["lanes"]],
                        raw["task_time"], raw["first_start"], raw["last_stop"], raw["total"],
                        raw.get("skipped", 0), None)

    def _stale(self) -> Snapshot:
        if self.last is None:
            return Snapshot(time.time(), [], [], [], [], 0.0, 0.0, 0.0, 0, 0, self.unavailable)
        last = self.last
        return Snapshot(time.time(), last.groups, last.workers, [], last.lanes, last.task_time,
                        last.first_start, last.last_stop, last.total, 0, self.unavailable)


def _edges(raw: list[Any] | None) -> dict[int, list[tuple[str, int]]] | None:
    if raw is None:
        return None
    return {int(i): [(str(g), int(j)) for g, j in deps] for i, deps in raw}
