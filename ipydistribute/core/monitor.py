"""What the scheduler knows about one run, gathered on the scheduler and sent in small pieces.

A scheduler plugin (registered once per scheduler) watches every transition of ipydistribute's
keys, ``(f"{label}-{role}-{token}", index)``, and keeps per run token: the state of each task (a
byte per task), counts per task group, the groups' dependencies, and the recent task stream
(which worker thread ran which task, when). A view asks, a few times a second, for a
:class:`Snapshot` of one token: its size grows with the number of groups and workers, plus the
task stream bars that are new since the last call (capped); the per-task states come along only
while the run has at most ``task_limit`` tasks, for a graph that draws each task.

Nothing here imports IPython or widgets; the views in ``ipydistribute.widgets`` draw snapshots.
"""

from __future__ import annotations

import collections
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin

PLUGIN_NAME = "ipydistribute-monitor"

#: States a view shows, in order; the one-letter codes travel in the per-task state strings.
STATES = ("released", "waiting", "queued", "processing", "memory", "erred")
CODES = "rwqpme"
_CODE_OF = {"released": 0, "forgotten": 0, "waiting": 1, "queued": 2, "no-worker": 2,
            "processing": 3, "memory": 4, "erred": 5}
_DONE = (4, 5)

#: Runs with at most this many tasks carry the state of each task (a graph of single tasks).
TASK_LIMIT = 400
#: Task stream bars kept per run on the scheduler, and sent at most per snapshot.
STREAM_KEPT = 20_000
STREAM_PER_SNAPSHOT = 200
#: Runs the plugin remembers after they were last asked for (older ones are dropped).
RUNS_KEPT = 64

_KEY_NAME = re.compile(r"^(?P<label>.+)-(?P<role>[A-Za-z]+\d*)-(?P<token>[0-9a-f]{8})$")


def parse_key(key: Any) -> tuple[str, str, str, int] | None:
    """``(token, group, role, index)`` of an ipydistribute key; None for any other key."""
    if type(key) is not tuple or len(key) != 2:
        return None
    if type(key[0]) is not str or type(key[1]) is not int:
        return None
    name = key[0]
    if len(name) < 11 or name[-9] != "-":
        return None
    match = _KEY_NAME.match(name)
    if match is None:
        return None
    return match["token"], name, match["role"], key[1]


class _Group:
    """One task group of a run, as the plugin tracks it."""

    __slots__ = ("name", "role", "states", "counts", "deps", "edges", "duration", "start", "stop")

    def __init__(self, name: str, role: str):
        self.name = name
        self.role = role
        self.states = bytearray()  # state code of task i; grows as tasks appear
        self.counts = [0] * len(STATES)
        self.deps: set[str] = set()  # groups this one depends on
        self.edges: dict[int, list[tuple[str, int]]] = {}  # task -> its tasks in other groups
        self.duration = 0.0  # compute seconds of finished tasks
        self.start = 0.0
        self.stop = 0.0

    def set_state(self, index: int, code: int) -> None:
        if index >= len(self.states):
            grow = index + 1 - len(self.states)
            self.states.extend(b"\x00" * grow)
            self.counts[0] += grow
        old = self.states[index]
        if old in _DONE and code == 0:
            return  # a finished task released afterwards stays finished for the picture
        self.counts[old] -= 1
        self.counts[code] += 1
        self.states[index] = code


class _RunRecord:
    """Everything the plugin keeps about one run token."""

    def __init__(self) -> None:
        self.groups: dict[str, _Group] = {}
        self.stream: collections.deque[tuple[int, ...] | tuple[Any, ...]] = collections.deque(
            maxlen=STREAM_KEPT)
        self.stream_count = 0  # bars ever appended (a cursor for callers)
        self.lanes: dict[tuple[str, int], int] = {}
        self.task_time = 0.0
        self.first_start = 0.0
        self.last_stop = 0.0
        self.asked = time.time()

    def tasks(self) -> int:
        return sum(len(g.states) for g in self.groups.values())


class RunMonitorPlugin(SchedulerPlugin):
    """Scheduler plugin: per-run task states, group counts and task stream of ipydistribute keys.

    Registered once per scheduler by :func:`ensure_plugin`; ``transition`` runs on the
    scheduler's event loop for every transition of every key and returns at once for keys
    that are not ipydistribute's.
    """

    name = PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        self.runs: dict[str, _RunRecord] = {}
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        """Called when the plugin is added: replay the transitions the scheduler still logs,
        so tasks that moved before the plugin existed are counted too."""
        self.scheduler = scheduler
        for entry in list(getattr(scheduler, "transition_log", ())):
            self._record(entry.key, entry.start, entry.finish, {})

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        """Called by the scheduler after each transition of a task."""
        self._record(key, start, finish, kwargs)

    def _record(self, key: Any, start: str, finish: str, info: dict[str, Any]) -> None:
        parsed = parse_key(key)
        if parsed is None:
            return
        token, name, role, index = parsed
        run = self.runs.get(token)
        if run is None:
            run = self.runs[token] = _RunRecord()
            self._forget_old()
        group = run.groups.get(name)
        if group is None:
            group = run.groups[name] = _Group(name, role)
        group.set_state(index, _CODE_OF.get(finish, 0))
        if finish == "waiting" and self.scheduler is not None:
            self._note_dependencies(run, group, key, index)
        if start == "processing" and finish in ("memory", "erred"):
            self._note_bar(run, group, index, finish, info)

    def _note_dependencies(self, run: _RunRecord, group: _Group, key: Any, index: int) -> None:
        ts = self.scheduler.tasks.get(key)
        if ts is None:
            return
        edges = []
        for dep in ts.dependencies:
            parsed = parse_key(dep.key)
            if parsed is None or parsed[1] == group.name:
                continue
            group.deps.add(parsed[1])
            edges.append((parsed[1], parsed[3]))
        if edges and run.tasks() <= TASK_LIMIT:
            group.edges[index] = edges

    def _note_bar(self, run: _RunRecord, group: _Group, index: int, finish: str,
                  info: dict[str, Any]) -> None:
        computes = [s for s in info.get("startstops", ()) if s.get("action") == "compute"]
        if not computes:
            return
        start, stop = computes[0]["start"], computes[-1]["stop"]
        worker = str(info.get("worker", ""))
        lane = run.lanes.setdefault((worker, int(info.get("thread") or 0)), len(run.lanes))
        run.stream.append((group.name, index, lane, start, stop, finish == "erred"))
        run.stream_count += 1
        elapsed = sum(s["stop"] - s["start"] for s in computes)
        group.duration += elapsed
        run.task_time += elapsed
        group.start = min(group.start, start) if group.start else start
        group.stop = max(group.stop, stop)
        run.first_start = min(run.first_start, start) if run.first_start else start
        run.last_stop = max(run.last_stop, stop)

    def _forget_old(self) -> None:
        while len(self.runs) > RUNS_KEPT:
            oldest = min(self.runs, key=lambda t: self.runs[t].asked)
            del self.runs[oldest]

    # --- asked for by clients (through run_on_scheduler) --------------------------------------

    def snapshot(self, token: str, since: int, workers: list[str] | None,
                 limit: int = STREAM_PER_SNAPSHOT) -> dict[str, Any]:
        """The state of run ``token`` as plain data; at most ``limit`` stream bars, the most
        recent ones from cursor ``since`` on."""
        run = self.runs.get(token)
        now = time.time()
        out: dict[str, Any] = {"now": now, "workers": self._workers(workers)}
        if run is None:
            out.update(groups=[], tasks=None, stream=[], lanes=[], cursor=since, task_time=0.0,
                       first_start=0.0, last_stop=0.0, total=0)
            return out
        run.asked = now
        total = run.tasks()
        few = total <= TASK_LIMIT
        out["groups"] = [
            {"name": g.name, "role": g.role, "counts": dict(zip(STATES, g.counts, strict=True)),
             "deps": sorted(g.deps), "duration": g.duration, "start": g.start, "stop": g.stop,
             "states": g.states.translate(_TO_LETTERS).decode() if few else None,
             "edges": [[i, e] for i, e in g.edges.items()] if few else None}
            for g in run.groups.values()
        ]
        offset = run.stream_count - len(run.stream)
        first = max(since, offset, run.stream_count - limit)
        out["stream"] = [run.stream[i - offset] for i in range(first, run.stream_count)]
        out["cursor"] = run.stream_count
        out["skipped"] = first - since if first > since else 0
        out["lanes"] = [[w, t] for (w, t), _ in sorted(run.lanes.items(), key=lambda kv: kv[1])]
        out.update(task_time=run.task_time, first_start=run.first_start, last_stop=run.last_stop,
                   total=total)
        return out

    def forget(self, token: str) -> None:
        self.runs.pop(token, None)

    def _workers(self, wanted: list[str] | None) -> list[dict[str, Any]]:
        rows = []
        for address, ws in self.scheduler.workers.items():
            if wanted is not None and address not in wanted:
                continue
            metrics = ws.metrics or {}
            gpu = metrics.get("gpu")
            gpu_info = (ws.extra or {}).get("gpu") or {}
            rows.append({
                "address": address, "name": str(ws.name), "nthreads": ws.nthreads,
                "cpu": float(metrics.get("cpu", 0.0)),
                "memory": int(metrics.get("memory", 0) or 0),
                "memory_limit": int(ws.memory_limit or 0),
                "processing": len(ws.processing),
                "resources": dict(ws.resources or {}),
                "simulated_gpu": _simulated(ws),
                "gpu": ({"utilization": gpu.get("utilization"),
                         "memory_used": gpu.get("memory-used"),
                         "memory_total": gpu_info.get("memory-total"),
                         "name": gpu_info.get("name")} if isinstance(gpu, dict) else None),
            })
        return rows


def _simulated(ws: Any) -> bool:
    """Whether the worker's GPU resource is simulated (its preload says so; else its name)."""
    facts = (ws.extra or {}).get("ipydistribute") or {}
    if "simulated_gpu" in facts:
        return bool(facts["simulated_gpu"])
    return str(ws.name).startswith("simgpu-")


_TO_LETTERS = bytes.maketrans(bytes(range(len(CODES))), CODES.encode())


# --- functions that run on the scheduler -----------------------------------------------------

def _snapshot_on_scheduler(dask_scheduler: Any, token: str, since: int,
                           workers: list[str] | None, limit: int) -> dict[str, Any] | None:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    return None if plugin is None else plugin.snapshot(token, since, workers, limit)


def _forget_on_scheduler(dask_scheduler: Any, token: str) -> None:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is not None:
        plugin.forget(token)


def _register_by_value() -> None:
    """Ship this module's code to the scheduler, which need not have ipydistribute installed."""
    module = sys.modules[__name__]
    if __name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(module)


_registered_on: set[tuple[str, str]] = set()


def ensure_plugin(client: Client) -> str | None:
    """Register the monitor plugin on the client's scheduler once; returns why not, or None."""
    where = (str(client.id), str(getattr(client.scheduler, "address", "")))
    if where in _registered_on:
        return None
    try:
        _register_by_value()
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
class WorkerSnapshot:
    address: str
    name: str
    nthreads: int
    cpu: float
    memory: int
    memory_limit: int
    processing: int
    resources: dict[str, float]
    simulated_gpu: bool
    gpu: dict[str, Any] | None

    @property
    def has_gpu_resource(self) -> bool:
        return float(self.resources.get("GPU", 0) or 0) > 0


@dataclass
class Snapshot:
    """What a view draws: the run's groups, new task stream bars, and the workers now."""

    now: float
    groups: list[GroupSnapshot]
    workers: list[WorkerSnapshot]
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
                raw = self.client.run_on_scheduler(  # type: ignore[no-untyped-call]
                    _snapshot_on_scheduler, token=self.token,
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
                self.client.run_on_scheduler(  # type: ignore[no-untyped-call]
                    _forget_on_scheduler, token=self.token)
            except Exception:  # the cluster is gone: nothing is left to forget
                pass

    def _parse(self, raw: dict[str, Any]) -> Snapshot:
        self.cursor = int(raw["cursor"])
        groups = [GroupSnapshot(g["name"], g["role"], g["counts"], g["deps"], g["duration"],
                                g["start"], g["stop"], g["states"], _edges(g["edges"]))
                  for g in raw["groups"]]
        workers = [WorkerSnapshot(**w) for w in raw["workers"]]
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
