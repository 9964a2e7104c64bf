"""The monitor's scheduler plugin: what the scheduler knows about each run, kept on the scheduler.

It watches every transition of ipydistribute's keys (core/keys.py) and keeps per run token: the
state of each task (a byte per task), counts per task group, the groups' dependencies, and the
recent task stream (which worker thread ran which task, when). The client side (core/monitor.py)
asks for a snapshot of one token a few times a second.

This module travels by value: the client pickles its code to the scheduler
(``monitor.register_by_value``), which need not have ipydistribute installed. So it imports only
the standard library, Dask, and one module of ours that travels with it and imports only the
standard library itself: :mod:`.keys` (the key format). Workers go back as Dask describes them
(``WorkerState.identity``), so the client reads them as it reads ``scheduler_info()``.
"""

from __future__ import annotations

import collections
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .keys import parse_key

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
            if finish in ("released", "forgotten"):  # a forgotten run's tasks leaving: not a new run
                return
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

    def _workers(self, wanted: list[str] | None) -> dict[str, dict[str, Any]]:
        """Each worker as Dask's ``scheduler_info()`` gives it (its ``identity``), with only the
        metrics a view shows: the client reads it with ``cluster_snapshot.worker_row``, as the
        cluster widget does."""
        rows = {}
        for address, ws in self.scheduler.workers.items():
            if wanted is not None and address not in wanted:
                continue
            info = ws.identity()
            metrics = info.get("metrics") or {}
            info["metrics"] = {k: metrics[k] for k in ("cpu", "memory", "task_counts", "gpu") if k in metrics}
            rows[address] = info
        return rows


_TO_LETTERS = bytes.maketrans(bytes(range(len(CODES))), CODES.encode())


# --- called on the scheduler by the client (Client.run_on_scheduler) ---------------------------

def snapshot_on_scheduler(dask_scheduler: Any, token: str, since: int,
                           workers: list[str] | None, limit: int) -> dict[str, Any] | None:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    return None if plugin is None else plugin.snapshot(token, since, workers, limit)


def forget_on_scheduler(dask_scheduler: Any, token: str) -> None:
    plugin = dask_scheduler.plugins.get(PLUGIN_NAME)
    if plugin is not None:
        plugin.forget(token)
