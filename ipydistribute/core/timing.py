"""Where a run's time went, from Dask's own account of the run's span (no timers of ours).

Every task of a run is submitted inside one ``distributed.span`` (see ``Run._drive``). The
scheduler's span knows the worker threads present while the run went, counted from Dask's
history of ``total_nthreads`` (so workers that join or leave, with ``adapt``, are counted for
the time they were there: ``Span.active_cpu_seconds``), and the workers' fine performance
metrics of its tasks (``Span.cumulative_worker_metrics``), which arrive with each worker's
heartbeat; a heartbeat is asked for first so the last tasks are counted (about 16 ms, 2 workers).

**workers busy** = the threads' time running the run's tasks / (the run's wall time x the
threads present), hence never above 100%.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from .on_scheduler import ask_scheduler

Share = Literal["running", "transfer", "waiting", "idle"]

#: Fine performance metrics of Dask (``("execute", prefix, activity, "seconds")``), by share.
ACTIVITY_SHARES: dict[str, Share] = {
    "thread-cpu": "running", "thread-noncpu": "running",
    "deserialize": "transfer", "serialize": "transfer", "compress": "transfer",
    "decompress": "transfer", "gather-dep": "transfer", "network": "transfer",
    "disk-read": "transfer", "disk-write": "transfer", "memory-read": "transfer",
    "executor": "waiting", "other": "waiting", "offload": "waiting",
    "idle or other spans": "idle",
}
SHARE_WORDS: dict[Share, str] = {"running": "running tasks", "transfer": "(de)serialising and moving data",
                                 "waiting": "waiting for a thread or the scheduler", "idle": "idle"}


@dataclass(frozen=True)
class RunTiming:
    """Dask's account of one run: its span's wall time, threads and thread-seconds by share."""

    wall: float  # first task enqueued to last task done, seconds
    thread_seconds: float  # threads present x time, over the same interval
    shares: dict[str, float] = field(default_factory=dict)  # seconds by Share

    @property
    def busy(self) -> float | None:
        """Workers busy, 0..1: running / thread_seconds."""
        if self.thread_seconds <= 0:
            return None
        return min(1.0, self.shares.get("running", 0.0) / self.thread_seconds)

    def breakdown(self) -> str:
        """``running tasks 77% · waiting for a thread or the scheduler 12% · idle 10%``."""
        if self.thread_seconds <= 0:
            return ""
        parts = [(SHARE_WORDS[s], self.shares.get(s, 0.0) / self.thread_seconds) for s in SHARE_WORDS]
        return " · ".join(f"{word} {share:.0%}" for word, share in parts if share >= 0.005)


def _span_on_scheduler(dask_scheduler: Any, span_id: str) -> dict[str, Any] | None:
    # Runs on the scheduler (by value): Dask's names only.
    extension = dask_scheduler.extensions.get("spans")
    span = extension.spans.get(span_id) if extension is not None else None
    if span is None:
        return None
    seconds: dict[str, float] = defaultdict(float)
    for key, value in span.cumulative_worker_metrics.items():
        if key[0] == "execute" and key[-1] == "seconds":
            seconds[str(key[2])] += float(value)
    return {"wall": span.stop - span.enqueued, "thread_seconds": span.active_cpu_seconds,
            "activities": dict(seconds)}


#: Seconds a worker may take to send its heartbeat before the figures go without its last
#: metrics (measured: 17 ms, up to 0.6 s right after 5,000 tasks were released).
HEARTBEAT_TIMEOUT = 1.0


async def _heartbeat(dask_worker: Any) -> None:
    import asyncio

    try:
        await asyncio.wait_for(dask_worker.heartbeat(), HEARTBEAT_TIMEOUT)
    except asyncio.TimeoutError:
        pass


async def _timing_on_scheduler(dask_scheduler: Any, span_id: str, heartbeat: bytes) -> dict[str, Any] | None:
    # Runs on the scheduler: each worker sends its heartbeat (the last tasks' metrics) through
    # the scheduler's pooled connections, then the span is read, in one call from the client.
    # (Client.run opened a new connection to each worker, and the span took a second call.)
    import asyncio

    async def ask(address: str) -> None:
        try:
            await asyncio.wait_for(dask_scheduler.rpc(address).run(function=heartbeat), 2 * HEARTBEAT_TIMEOUT)
        except Exception:  # a worker leaving: the figures go without its last metrics
            pass

    await asyncio.gather(*(ask(address) for address in list(dask_scheduler.workers)))
    return _span_on_scheduler(dask_scheduler, span_id)


def run_timing(client: Any, span_id: str | None) -> RunTiming | None:
    """The timing of the run in span ``span_id``; None when the scheduler cannot tell."""
    if span_id is None:
        return None
    try:
        raw = ask_scheduler(client, _timing_on_scheduler, span_id=span_id, heartbeat=pickle.dumps(_heartbeat))
    except Exception:  # the cluster went away, or a scheduler without spans: no figures
        return None
    if raw is None:
        return None
    shares: dict[str, float] = defaultdict(float)
    for activity, value in raw["activities"].items():
        shares[ACTIVITY_SHARES.get(activity, "waiting")] += value
    return RunTiming(float(raw["wall"]), float(raw["thread_seconds"]), dict(shares))
