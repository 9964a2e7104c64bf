"""The figures of a run a course teaches: wall time, task time, workers busy, where time went.

**workers busy** = the threads' time running the run's tasks / (the run's wall time x the
threads present over the run's life), from Dask's account of the run (:mod:`..core.timing`),
so it is never above 100%, even when ``adapt`` changed the cluster during the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import counted, label_text
from ..core.kinds import ShownState
from ..core.monitor import Snapshot
from ..core.run import Progress
from ..core.timing import RunTiming


def pace(progress: Progress) -> tuple[float, float | None]:
    """Items per second so far, and the seconds left while the run is running (None otherwise)."""
    rate = progress.items_done / progress.elapsed if progress.elapsed > 0 else 0.0
    eta = None
    if progress.state == "running" and progress.items_total and rate:
        eta = max(0.0, (progress.items_total - progress.items_done) / rate)
    return rate, eta


def pace_text(rate: float, eta: float | None) -> str:
    """`` · 12.5 items/s · ~40 s left``, the parts that are known."""
    text = f" · {rate:,.1f} items/s" if rate else ""
    return text + (f" · ~{eta:.0f} s left" if eta is not None else "")


@dataclass(frozen=True)
class RunFigures:
    """The header and summary figures of a run, from a progress and a monitor snapshot."""

    label: str
    state: ShownState
    tasks_done: int
    tasks_total: int
    tasks_failed: int
    items_done: int
    items_total: int | None
    workers: int
    threads: int
    wall: float
    task_time: float
    rate: float  # items per second
    eta: float | None  # seconds left, while running
    timing: RunTiming | None = None  # Dask's account, once the run has ended
    hint: str | None = None

    @property
    def busy(self) -> float | None:
        """Workers busy, 0..1 (see the module's docstring); None before the run ended."""
        return self.timing.busy if self.timing is not None else None

    def header(self) -> str:
        total = "?" if self.items_total is None else f"{self.items_total:,}"
        text = (f"{self.tasks_done:,}/{max(self.tasks_total, self.tasks_done):,} tasks · "
                f"{self.items_done:,}/{total} items · {self.wall:.1f} s")
        return text + pace_text(self.rate, self.eta)

    def summary(self) -> str:
        busy = self.busy
        text = (f"{counted(self.tasks_done, 'task')} on {counted(self.workers, 'worker')} "
                f"({counted(self.threads, 'thread')}) · "
                f"wall time {self.wall:.2f} s · total task time {self.task_time:.2f} s")
        if busy is not None:
            text += f" · workers busy {busy:.0%}"
        if self.tasks_failed:
            text += f" · {self.tasks_failed} failed"
        return text

    def details(self) -> list[str]:
        """Where the threads' time went, and the hint: the lines under the summary."""
        lines = []
        if self.timing is not None and self.timing.breakdown():
            lines.append(f"threads' time: {self.timing.breakdown()}")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return lines


def figures(progress: Progress, snapshot: Snapshot | None, threads: int,
            timing: RunTiming | None = None, hint: str | None = None) -> RunFigures:
    counts = snapshot.counts() if snapshot is not None and snapshot.groups else None
    done = counts["memory"] if counts else progress.tasks_done
    total = snapshot.total if snapshot is not None and snapshot.total else progress.tasks_submitted
    failed = counts["erred"] if counts else progress.tasks_failed
    lanes = len({w for w, _ in snapshot.lanes}) if snapshot is not None else 0
    rate, eta = pace(progress)
    return RunFigures(label_text(progress.label), progress.state, done, total, failed, progress.items_done,
                      progress.items_total, lanes, threads, progress.elapsed,
                      snapshot.task_time if snapshot is not None else 0.0, rate, eta, timing, hint)
