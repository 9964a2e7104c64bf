"""A plain picture of a cluster at one moment: its workers, totals and what can be done to it.

The cluster widget renders these; one snapshot costs one ``scheduler_info`` call, whatever the
number of tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dask.utils import format_bytes

from .errors import counted
from .gpus import WORKER_INFO_KEY, simulated_gpu
from .identity import scheduler_identity

if TYPE_CHECKING:
    from .cluster import ClusterHandle

#: Worker-side task states that count as "processing" (assigned to the worker, not yet done).
_PROCESSING = ("executing", "ready", "constrained", "long-running", "waiting", "fetch", "flight")


@dataclass(frozen=True)
class WorkerRow:
    """One worker as the scheduler saw it."""

    name: str
    address: str
    threads: int
    memory_used: int
    memory_limit: int
    cpu: float  # percent of one core, as Dask reports it
    processing: int
    resources: dict[str, float]
    gpu: str = ""  # "real", "simulated" or "" (no GPU resource)
    gpu_name: str = ""
    gpu_utilization: float | None = None  # percent, from Dask's NVML metrics
    gpu_memory_used: int | None = None
    gpu_memory_total: int | None = None
    pid: int | None = None

    @property
    def gpu_utilization_text(self) -> str:
        """``37 %``, or "" without NVML metrics."""
        return "" if self.gpu_utilization is None else f"{self.gpu_utilization:.0f} %"

    @property
    def gpu_memory_text(self) -> str:
        """``1.2 GiB / 16 GiB`` of GPU memory, or "" without NVML metrics."""
        if self.gpu_memory_used is None:
            return ""
        text = format_bytes(self.gpu_memory_used)
        return text + (f" / {format_bytes(self.gpu_memory_total)}" if self.gpu_memory_total else "")

    @property
    def resources_text(self) -> str:
        parts = []
        for name, amount in sorted(self.resources.items()):
            text = f"{name}={amount:g}"
            if name == "GPU" and self.gpu:
                text += f" ({self.gpu})"
            parts.append(text)
        return ", ".join(parts)


@dataclass(frozen=True)
class ClusterSnapshot:
    """The cluster at ``taken`` (seconds since the epoch)."""

    kind: str
    address: str
    running: bool
    dashboard_link: str | None
    workers: tuple[WorkerRow, ...] = ()
    adaptive: tuple[int, int] | None = None
    scale_blocked: str | None = None  # why scale/adapt cannot act, None when they can
    gpu_note: str = ""
    taken: float = field(default_factory=time.time)

    @property
    def threads(self) -> int:
        return sum(w.threads for w in self.workers)

    @property
    def memory_used(self) -> int:
        return sum(w.memory_used for w in self.workers)

    @property
    def memory_limit(self) -> int:
        return sum(w.memory_limit for w in self.workers)

    @property
    def processing(self) -> int:
        return sum(w.processing for w in self.workers)

    @property
    def gpus_real(self) -> int:
        return sum(1 for w in self.workers if w.gpu == "real")

    @property
    def gpus_simulated(self) -> int:
        return sum(1 for w in self.workers if w.gpu == "simulated")

    def closed(self) -> ClusterSnapshot:
        """The same picture, marked as the last one of a closed cluster."""
        return ClusterSnapshot(self.kind, self.address, False, self.dashboard_link, self.workers,
                               None, self.scale_blocked, self.gpu_note, time.time())


def take(handle: ClusterHandle) -> ClusterSnapshot:
    """Ask the scheduler for a snapshot; a closed or unreachable cluster gives one with no workers."""
    from .cluster import scale_blocked

    common: dict[str, Any] = dict(kind=handle.kind, address=handle.address,
                                  dashboard_link=handle.dashboard_link, adaptive=handle.adaptive,
                                  scale_blocked=scale_blocked(handle), gpu_note=_gpu_note(handle))
    if not handle.alive():
        return ClusterSnapshot(running=False, **common)
    try:
        info = scheduler_identity(handle.client)
    except (OSError, TimeoutError, RuntimeError):  # the scheduler went away between two looks
        return ClusterSnapshot(running=False, **common)
    rows = sorted((worker_row(address, w, handle.kind) for address, w in info.get("workers", {}).items()),
                  key=lambda row: _natural(row.name))
    return ClusterSnapshot(running=True, workers=tuple(rows), **common)


def worker_row(address: str, info: dict[str, Any], kind: str = "remote") -> WorkerRow:
    """One worker of ``scheduler_info()['workers']`` as a row."""
    metrics = info.get("metrics", {}) or {}
    resources = {str(k): float(v) for k, v in (info.get("resources") or {}).items()}
    facts = info.get(WORKER_INFO_KEY) or {}
    name = str(info.get("name", address))
    simulated = simulated_gpu(facts, name)
    gpu = ("simulated" if simulated else "real") if resources.get("GPU") else ""
    counts = metrics.get("task_counts") or {}
    row: dict[str, Any] = dict(
        name=name, address=address, threads=int(info.get("nthreads", 0)),
        memory_used=int(metrics.get("memory", 0) or 0), memory_limit=int(info.get("memory_limit", 0) or 0),
        cpu=float(metrics.get("cpu", 0.0) or 0.0),
        processing=int(sum(counts.get(state, 0) for state in _PROCESSING)),
        resources=resources, gpu=gpu, pid=facts.get("pid"),
    )
    # Dask's NVML metrics describe the device of the process; a simulated GPU has none, and a CPU
    # worker of the embedded cluster is not given one.
    gpu_static = info.get("gpu") or {}
    gpu_live = metrics.get("gpu") or {}
    if gpu_live and not simulated and (gpu == "real" or kind != "local"):
        row.update(gpu_name=str(gpu_static.get("name", "")),
                   gpu_utilization=_number(gpu_live.get("utilization")),
                   gpu_memory_used=_int(gpu_live.get("memory-used")),
                   gpu_memory_total=_int(gpu_static.get("memory-total")))
    return WorkerRow(**row)


def _gpu_note(handle: ClusterHandle) -> str:
    if handle.kind != "local":
        return ""
    parts = []
    if handle.gpus:
        parts.append(f"{counted(len(handle.gpus), 'GPU worker')}: " + ", ".join(g.name for g in handle.gpus))
    else:
        parts.append(f"no GPU worker: {handle.gpu_state.value}")
    if handle.simulated_gpus:
        parts.append(f"{counted(handle.simulated_gpus, 'simulated GPU worker')} (no real GPU)")
    return "; ".join(parts)


def _natural(name: str) -> tuple[Any, ...]:
    head, _, tail = name.rpartition("-")
    return (head, int(tail), "") if tail.isdigit() else (name, -1, name)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None
