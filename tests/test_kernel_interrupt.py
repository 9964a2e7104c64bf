"""Ctrl-C in a real kernel: the cell stops, its tasks leave the cluster, the workers live on."""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Iterator

import psutil
import pytest
from figures import record
from kernel_helpers import CLUSTER_SETUP, Kernel
from waiting import wait_until

pytestmark = pytest.mark.slow

SETUP = CLUSTER_SETUP + """
from ipydistribute.core import identity
def spin(seconds):
    started = time.monotonic()
    while time.monotonic() - started < seconds:  # pure Python: a stop interrupts it
        pass
def executing():
    return sum(client.run(lambda dask_worker: len(dask_worker.state.executing)).values())
def workers():
    return len(identity.workers(client))
"""


@pytest.fixture(scope="module")
def shared_kernel() -> Iterator[Kernel]:
    """One kernel and its 2-worker cluster for the tests that only need one (a start is about 5 s)."""
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=180)
        yield kernel


@pytest.fixture
def kernel(shared_kernel: Kernel) -> Kernel:
    """The module's kernel with its cluster whole and idle: a test before may have restarted a
    worker or left cancelled items ending."""
    shared_kernel.ok("wait_until(lambda: workers() == 2 and not executing() and not tasks_left(), 120, "
                     "'the cluster whole and idle')", timeout=180)
    return shared_kernel


def test_interrupt_cancels_the_cell_and_keeps_the_workers(kernel):
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    assert len(pids) == 2

    msg_id = kernel.submit("%%distribute x in range(40) --batch 1\nimport time\n"
                           "print('started', x, flush=True)\ntime.sleep(1)\nx")
    kernel.wait_for_output(msg_id, "started", 3)  # the items run (and one has finished)
    kernel.interrupt()
    reply = kernel.collect(msg_id, timeout=60)
    assert reply.status == "error" and reply.ename == "RunStopped"

    left = kernel.ok("wait_until(lambda: tasks_left() == 0, 60, 'no task left on the scheduler')\ntasks_left()")
    assert left.value() == "0"
    assert ast.literal_eval(kernel.ok("worker_pids()").value()) == pids
    after = kernel.ok("%distribute x + 1 for x in range(5)")
    assert after.value() == "[1, 2, 3, 4, 5]"
    assert "Task exception was never retrieved" not in reply.text + left.text + after.text
    assert "Traceback" not in left.text + after.text


def test_kernel_shutdown_leaves_no_worker_process():
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=120)
        pids = ast.literal_eval(kernel.ok("worker_pids()").value())
        kernel.ok("%distribute x for x in range(3)")
    def running() -> list[int]:
        return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]

    wait_until(lambda: not running(), 20, "the kernel's worker processes gone")


# --- long items: Ctrl-C stops the items themselves, not only their tasks ----------------------------

#: items of 60 s: item 0 in C code (time.sleep), item 1 in a Python loop, one per worker
MIXED_CELL = ("%%distribute x in range(2) --batch 1 --view none --name long_mixed\n"
              "print('started', x, flush=True)\n"
              "time.sleep(60) if x == 0 else spin(60)\n"
              "x")


def test_ctrl_c_stops_long_items_and_restarts_only_the_worker_stuck_in_c_code(kernel):
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    msg_id = kernel.submit(MIXED_CELL)
    kernel.wait_for_output(msg_id, "started", 2)

    kernel.interrupt()
    interrupted = time.monotonic()
    reply = kernel.collect(msg_id, timeout=60)
    raised = time.monotonic() - interrupted
    assert reply.status == "error" and reply.ename == "RunStopped", reply.text
    assert raised < 20, f"the cell ended {raised:.1f} s after Ctrl-C"  # 56 s before the fix
    # the cell says what it stopped: the Python loop interrupted, the sleeper's worker restarted
    assert "interrupted item #1" in reply.text, reply.text
    restarted = [int(pid) for pid in re.findall(r"restarted worker \S+ \(pid (\d+)\)", reply.text)]
    assert len(restarted) == 1 and restarted[0] in pids, reply.text
    assert "item #0 (0) did not stop" in reply.text

    after = kernel.ok("%distribute x * 2 for x in range(4)", timeout=60)
    done = time.monotonic() - interrupted
    assert after.value() == "[0, 2, 4, 6]"
    assert done < 60, f"the next cell was done {done:.1f} s after Ctrl-C"
    now = ast.literal_eval(kernel.ok("worker_pids()").value())
    assert len(now) == 2 and set(pids) - set(now) == set(restarted), (pids, now)
    assert "Traceback" not in after.text and "Task exception was never retrieved" not in after.text
    record("interrupt", f"long items (time.sleep(60) and a Python loop): KeyboardInterrupt {raised:.2f} s "
           f"after Ctrl-C, next 4-item cell done {done:.2f} s after it; restarted pid {restarted[0]} "
           f"(of {pids}), the Python loop's worker kept its process")


def test_cancel_of_a_nowait_run_frees_the_workers_running_long_items(kernel):
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    kernel.ok("run = %distribute spin(60) for x in range(4) --batch 1 --view none --nowait")
    kernel.ok("wait_until(lambda: executing() == 2, 60, 'both workers run an item')")
    stopped = kernel.ok("t = time.monotonic(); run.cancel(); freed = time.monotonic() - t\n"
                        "wait_until(lambda: not executing(), 30, 'every worker thread free')\n"
                        "(executing(), round(freed, 2), round(time.monotonic() - t, 2), run.state)")
    left, cancel_seconds, free_seconds, state = ast.literal_eval(stopped.value())
    assert left == 0 and state == "cancelled", kernel.ok("run.stop_report").text
    report = kernel.ok("print('\\n'.join(run.stop_report.lines()))").text
    assert "interrupted items #0 (0), #1 (1)" in report and "restarted" not in report, report
    assert ast.literal_eval(kernel.ok("worker_pids()").value()) == pids
    assert kernel.ok("%distribute x for x in range(4)", timeout=60).value() == "[0, 1, 2, 3]"
    record("interrupt", f"Run.cancel() of a --nowait run of 60 s Python-loop items: returned in "
           f"{cancel_seconds:.2f} s, workers idle {free_seconds:.2f} s after the call, no restart")


def test_a_failed_item_stops_its_long_running_batch_mates(kernel):
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    marker = f"/tmp/ipydistribute-started-{time.time_ns()}"
    reply = kernel.run(f"%%distribute x in range(2) --batch 1 --view none\n"
                       f"import os\n"
                       f"if x == 1:\n    open({marker!r}, 'w').close()\n    spin(60)\n"
                       f"while not os.path.exists({marker!r}):\n    time.sleep(0.01)\n"
                       f"raise ValueError('item 0 fails while item 1 runs')", timeout=60)
    assert reply.status == "error" and reply.ename == "CellError", reply.text
    assert "interrupted item #1 (1)" in reply.text, reply.text
    idle = kernel.ok("executing()")
    assert idle.value() == "0"
    assert ast.literal_eval(kernel.ok("worker_pids()").value()) == pids
    assert kernel.ok("%distribute x for x in range(4)", timeout=30).value() == "[0, 1, 2, 3]"
