"""The embedded cluster in a real kernel: the cluster widget's bundle, and no worker process left
after the kernel restarts or shuts down."""

from __future__ import annotations

import ast

import psutil
import pytest
from kernel_helpers import Kernel
from waiting import wait_until

pytestmark = pytest.mark.slow

PIDS = "import os, ipydistribute\nsorted(ipydistribute.get_client().run(os.getpid).values())"


#: jupyter_client ends a kernel that has not exited 2.5 s after its shutdown request with SIGTERM
#: (return code -15): multiprocessing's resource tracker, which ignores SIGTERM, kept ipykernel
#: waiting for its children.
EXITS_BY_ITSELF = "the kernel did not exit by itself when asked to (jupyter_client ended it)"


def alive(pids: list[int]) -> list[int]:
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in pids if running(p)]


def wait_gone(pids: list[int], what: str, timeout: float = 30) -> None:
    wait_until(lambda: not alive(pids), timeout, what, log=lambda: f"still running: {alive(pids)}", interval=0.2)


def test_kernel_restart_and_shutdown_close_the_embedded_cluster() -> None:
    with Kernel() as kernel:
        kernel.ok("%load_ext ipydistribute")
        # the first %%distribute cell starts the embedded cluster by itself
        first = kernel.ok("%%distribute x in range(4) --view none\nx * 2")
        assert "Started a local Dask cluster" in first.text and "[0, 2, 4, 6]" in first.text
        pids = ast.literal_eval(kernel.ok(PIDS).value())
        assert len(pids) == 2  # 2 cores: 2 CPU workers

        shown = kernel.ok("%cluster")
        display = [o for o in shown.outputs if o["msg_type"] == "display_data"]
        assert len(display) == 1
        data = display[0]["content"]["data"]
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "cpu-0" in data["text/html"] and "running" in data["text/html"]
        assert display[0]["content"]["transient"].get("display_id")

        old_kernel = kernel.km.provisioner.process
        kernel.km.restart_kernel(now=False)
        kernel.kc.wait_for_ready(timeout=60)
        wait_gone(pids, "a kernel restart ends the old kernel's worker processes")
        assert old_kernel.wait(30) == 0, EXITS_BY_ITSELF

        kernel.ok("%load_ext ipydistribute")
        started = kernel.ok("%cluster start --workers 1 --gpus none --memory-limit 1GiB")
        display_id = started.outputs[-1]["content"]["transient"]["display_id"]
        pids = ast.literal_eval(kernel.ok(PIDS).value())
        assert len(pids) == 1
        # the cell waits until the widget's refresh thread has seen the cluster close (and ended)
        stopped = kernel.ok("%cluster stop\nimport threading\n"
                            "[t.join(60) for t in threading.enumerate() if t.name == 'ipydistribute-cluster-widget']")
        assert "stopped" in stopped.text
        # the saved notebook keeps the last picture: the display is replaced by the closed cluster
        updates = [o for o in stopped.outputs if o["msg_type"] == "update_display_data"
                   and o["content"]["transient"]["display_id"] == display_id]
        assert len(updates) == 1
        final = updates[0]["content"]["data"]["text/html"]
        assert "closed" in final and "cpu-0" in final
        wait_gone(pids, "%cluster stop ends the worker processes")
        kernel.ok("%cluster start --workers 1 --gpus none --memory-limit 1GiB")
        pids = ast.literal_eval(kernel.ok(PIDS).value())
        last_kernel = kernel.km.provisioner.process
    wait_gone(pids, "kernel shutdown ends the worker processes")
    assert last_kernel.wait(30) == 0, EXITS_BY_ITSELF
