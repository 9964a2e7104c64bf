"""Timing helpers shared by the course notebooks (notebook 1 builds them step by step).

Every distributed run of the course stands next to its serial baseline; these helpers time
both the same way: wall-clock seconds around the whole run, as a user waits for it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import ipydistribute

__all__ = ["my_workers", "serial", "task_overhead", "timed"]


def my_workers() -> list[str]:
    """The names of the workers of the notebook's cluster, sorted."""
    info = ipydistribute.get_client().scheduler_info(n_workers=-1)["workers"]
    return sorted(str(w["name"]) for w in info.values())


def serial(func: Callable[[Any], Any], items: Iterable[Any]) -> tuple[float, list[Any]]:
    """Seconds and values of ``[func(x) for x in items]`` run in the notebook."""
    start = time.perf_counter()
    values = [func(x) for x in items]
    return time.perf_counter() - start, values


def timed(func: Callable[[Any], Any], items: Iterable[Any], **options: Any) -> tuple[float, Any]:
    """Seconds and value of ``ipydistribute.distribute(func, items, **options)``."""
    start = time.perf_counter()
    value = ipydistribute.distribute(func, items, **options)
    return time.perf_counter() - start, value


def _empty(_: Any) -> None:
    return None


def task_overhead(tasks: int = 200, **options: Any) -> tuple[float, float]:
    """(fixed cost of a run, overhead per task) in seconds, measured with empty tasks."""
    fixed = statistics.median(timed(_empty, [0], batch=1, **options)[0] for _ in range(3))
    many = timed(_empty, range(tasks), batch=1, **options)[0]
    return fixed, max(0.0, (many - fixed) / tasks)
