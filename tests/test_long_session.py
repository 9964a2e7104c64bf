"""A long session: 200 %%distribute cells one after another in one real kernel. The kernel's and
the workers' memory must not keep growing, no thread may be left behind, and no future or task
may be left on the cluster. Memory before and after is printed (and bounded generously)."""

from __future__ import annotations

import ast

import pytest
from figures import record
from kernel_helpers import KERNEL_WAIT_UNTIL, Kernel

pytestmark = pytest.mark.slow

CELLS = 200
MiB = 2**20
SETUP = KERNEL_WAIT_UNTIL + """
%load_ext ipydistribute
%cluster start --workers 2 --memory-limit 1GiB
import gc, os, threading, psutil, ipywidgets, ipydistribute
from ipydistribute.core.run import Run
client = ipydistribute.get_client()
def measure():
    gc.collect()
    # the client drops released keys on its own loop, a little later
    wait_until(lambda: not client.futures, 30, f"the client's futures released: {list(client.futures)[:5]}")
    workers = client.run(lambda: (psutil.Process().memory_info().rss, threading.active_count()))
    tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
    return {"kernel_rss": psutil.Process().memory_info().rss, "kernel_threads": threading.active_count(),
            "worker_rss": sorted(r for r, _ in workers.values()),
            "worker_threads": sorted(t for _, t in workers.values()),
            "futures": len(client.futures), "scheduler_tasks": tasks,
            "runs_alive": sum(isinstance(o, Run) for o in gc.get_objects()),
            "widgets": len(ipywidgets.Widget.widgets)}
"""
# What a student does all afternoon: maps, reductions, prints, a failing item now and then.
KINDS = [
    ("%%distribute x in range(12) --out squares\nx * x", "ok"),
    ("%%distribute x in range(30) --reduce sum\nx", "ok"),
    ("%%distribute x in range(4) --batch 1\nprint('item', x)\nx", "ok"),
    ("%%distribute x in range(6)\nif x == 3:\n    raise ValueError('bad item')\nx", "error"),
    ("%distribute x + 1 for x in range(8)", "ok"),
]


def _cell(i: int) -> tuple[str, str]:
    return KINDS[i % len(KINDS)]


@pytest.fixture(scope="module")
def session() -> tuple[dict, dict]:
    """Measurements before and after 200 cells (after a warm-up of 20)."""
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=180)
        for i in range(20):  # warm up: imports, caches and the first views are not leaks
            code, expect = _cell(i)
            assert kernel.run(code).status == expect
        before = ast.literal_eval(kernel.ok("measure()").value())
        for i in range(CELLS):
            code, expect = _cell(i)
            reply = kernel.run(code)
            assert reply.status == expect, f"cell {i}: {reply.text}"
        after = ast.literal_eval(kernel.ok("measure()").value())
    record("long-session", f"{CELLS} cells: kernel {before['kernel_rss'] / MiB:.0f} -> "
           f"{after['kernel_rss'] / MiB:.0f} MiB, workers {[round(b / MiB) for b in before['worker_rss']]} -> "
           f"{[round(a / MiB) for a in after['worker_rss']]} MiB, kernel threads {before['kernel_threads']} -> "
           f"{after['kernel_threads']}, worker threads {before['worker_threads']} -> {after['worker_threads']}, "
           f"futures {before['futures']} -> {after['futures']}, scheduler tasks {before['scheduler_tasks']} -> "
           f"{after['scheduler_tasks']}, Run objects alive {before['runs_alive']} -> {after['runs_alive']}, "
           f"widgets {before['widgets']} -> {after['widgets']}")
    return before, after


def test_memory_and_threads_do_not_keep_growing(session):
    before, after = session
    grow_kernel = (after["kernel_rss"] - before["kernel_rss"]) / MiB
    grow_workers = [(a - b) / MiB for a, b in zip(after["worker_rss"], before["worker_rss"])]
    assert after["kernel_threads"] <= before["kernel_threads"] + 1, "threads leaked in the kernel"
    assert all(a <= b + 2 for a, b in zip(after["worker_threads"], before["worker_threads"])), \
        "threads leaked on workers"
    assert grow_kernel < 200, f"the kernel grew by {grow_kernel:.0f} MiB over {CELLS} cells"
    assert max(grow_workers) < 150, f"a worker grew by {max(grow_workers):.0f} MiB over {CELLS} cells"


def test_no_run_future_or_task_is_left_behind(session):
    before, after = session
    assert after["runs_alive"] <= before["runs_alive"], "finished runs are kept alive"
    assert after["futures"] == 0, "futures left in the kernel's client"
    assert after["scheduler_tasks"] == 0, "tasks left on the scheduler"


def test_no_widget_is_left_open(session):
    before, after = session
    assert after["widgets"] <= before["widgets"] + 5, f"widgets {before['widgets']} -> {after['widgets']}"
