"""Ctrl-C in a real kernel: the cell stops, its tasks leave the cluster, the workers live on."""

from __future__ import annotations

import ast
import time

import psutil
import pytest
from kernel_helpers import CLUSTER_SETUP, Kernel

pytestmark = pytest.mark.slow

SETUP = CLUSTER_SETUP


def test_interrupt_cancels_the_cell_and_keeps_the_workers():
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=120)
        pids = ast.literal_eval(kernel.ok("worker_pids()").value())
        assert len(pids) == 2

        msg_id = kernel.submit("%%distribute x in range(40) --batch 1\nimport time\ntime.sleep(1)\nx")
        time.sleep(4)
        kernel.interrupt()
        reply = kernel.collect(msg_id, timeout=15)
        assert reply.status == "error" and reply.ename == "RunStopped"

        left = kernel.ok("import time\nfor _ in range(40):\n    if tasks_left() == 0: break\n"
                         "    time.sleep(0.1)\ntasks_left()")
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
    deadline = time.monotonic() + 20
    while any(psutil.pid_exists(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
