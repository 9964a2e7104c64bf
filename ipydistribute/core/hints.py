"""One concrete hint when the workers were not busy: what held the run back, and what to try.

Read off Dask's account of the run (:mod:`.timing`) and its task stream; at most one hint, the
first that applies, and none when the workers were busy enough.
"""

from __future__ import annotations

from collections.abc import Sequence

from .monitor import Bar
from .timing import RunTiming

#: Below this share of busy threads a run gets a hint.
BUSY_ENOUGH = 0.7
#: Dask's own cost per task is a few ms: tasks much shorter than this are mostly overhead.
SHORT_TASK = 0.005
#: A run whose tasks computed for less than this in all is too small to spread out.
SMALL_RUN = 0.05


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.0f} ms"
    return f"{seconds:.1f} s"


def straggler_share(bars: Sequence[Bar]) -> float:
    """The share of the stream's span in which a single lane was still working at the end."""
    if len(bars) < 2:
        return 0.0
    ends: dict[int, float] = {}
    for b in bars:
        ends[b.lane] = max(ends.get(b.lane, 0.0), b.stop)
    if len(ends) < 2:
        return 0.0
    last, second = sorted(ends.values())[-2:][::-1]
    span = last - min(b.start for b in bars)
    return (last - second) / span if span > 0 else 0.0


def hint(timing: RunTiming | None, bars: Sequence[Bar], items: int, tasks: int, threads: int,
         batch: int | None) -> str | None:
    """The hint for a run whose workers were busy less than :data:`BUSY_ENOUGH`, else None.

    ``batch`` is the ``--batch`` asked for (None: auto).
    """
    busy = timing.busy if timing is not None else None
    if busy is None or busy >= BUSY_ENOUGH or tasks == 0:
        return None
    assert timing is not None
    running = timing.shares.get("running", 0.0)
    per_task = running / tasks
    if running < SMALL_RUN:
        return (f"the cell computed for {_duration(running)} in all: Dask's own cost per task "
                "dominates; work this small is faster as a plain loop")
    if per_task < SHORT_TASK and items:
        per_item = _duration(running / items)
        if batch is not None and items > 4 * threads:
            return f"items of {per_item} in tasks of {_duration(per_task)}: use --batch auto"
        return f"tasks of {_duration(per_task)}: give each item more work, or more items per task"
    if tasks < threads:
        return f"{tasks} task(s) for {threads} threads: give more items (or a smaller --batch)"
    share = straggler_share(bars)
    if share >= 0.2:
        return f"one straggler held the last {share:.0%} of the run: split the longest items, or --batch 1"
    if timing.shares.get("transfer", 0.0) >= 0.25 * timing.thread_seconds:
        return ("moving data took a quarter of the threads' time: send less per item (load data on "
                "the workers with --all, or pass file names instead of arrays)")
    return None
