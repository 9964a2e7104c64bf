"""A large captured value does not pin a run to one worker; counts read right in summaries."""

from __future__ import annotations

from typing import Any

import numpy as np

from ipydistribute.core.errors import counted
from ipydistribute.widgets.summary import RunFigures

WHERE = """
import time
from distributed import get_worker
time.sleep(0.5)
(float(big[i]), get_worker().name)
"""


def test_three_long_items_with_an_8_mb_capture_use_both_workers(ip: Any) -> None:
    ip.user_ns["big"] = np.arange(1_000_000, dtype=np.float64)  # 8 MB: scattered, not inline
    values = ip.run_cell_magic("distribute", "i in range(3) --workers cpu-0,cpu-1 --view none", WHERE)
    assert [v for v, _ in values] == [0.0, 1.0, 2.0]
    assert {name for _, name in values} == {"cpu-0", "cpu-1"}


def test_counts_are_singular_for_one_and_plural_otherwise() -> None:
    assert [counted(n, "worker") for n in (0, 1, 2, 1500)] == ["0 workers", "1 worker", "2 workers",
                                                                  "1,500 workers"]
    figures = RunFigures(label="cell1", state="finished", tasks_done=1, tasks_total=1, tasks_failed=0,
                         items_done=1, items_total=1, workers=1, threads=1, wall=1.0, task_time=0.5,
                         rate=1.0, eta=None)
    assert figures.summary().startswith("1 task on 1 worker (1 thread) · ")
    many = RunFigures(label="cell1", state="finished", tasks_done=3, tasks_total=3, tasks_failed=0,
                      items_done=3, items_total=3, workers=2, threads=2, wall=1.0, task_time=1.5,
                      rate=3.0, eta=None)
    assert many.summary().startswith("3 tasks on 2 workers (2 threads) · ")
