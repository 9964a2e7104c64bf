"""``%cluster new distributed.SSHCluster`` to a real sshd (Debian's openssh-server) on 127.0.0.1,
on a port of its own, with a key made by the test, from a real kernel."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from deploy_servers import Sshd, started, wait_until
from kernel_helpers import Kernel

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    yield from started(Sshd, tmp_path)


def spec_processes(marker: str) -> list[int]:
    """Dask processes started over SSH for this test (their command line carries ``marker``)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "distributed.cli.dask_spec" in cmdline and marker in cmdline:
            found.append(proc.pid)
    return found


def test_an_ssh_cluster_runs_cells_on_workers_started_over_ssh_and_stop_ends_them(sshd: Sshd) -> None:
    options = {"port": sshd.port, "client_keys": [str(sshd.key)], "known_hosts": None,
               "env": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}}
    marker = str(sshd.dir / "workers")  # each worker's local directory: finds this test's processes
    line = ("%cluster new distributed.SSHCluster hosts=['127.0.0.1', '127.0.0.1', '127.0.0.1'] "
            f"connect_options={options!r} remote_python={sys.executable!r} "
            f"worker_options={{'nthreads': 1, 'local_directory': {marker!r}}} "
            "scheduler_options={'port': 0, 'dashboard_address': '127.0.0.1:0'}")
    with Kernel() as kernel:
        kernel.ok("%load_ext ipydistribute")
        kernel.ok(line, timeout=180)
        kernel.ok("import ipydistribute\nipydistribute.get_client().wait_for_workers(2, timeout=120)", timeout=180)
        assert len(spec_processes(marker)) == 2
        ran = kernel.ok("%%distribute x in range(6) --view none\nimport os\nprint('pid', os.getpid())\nx * x")
        assert "[0, 1, 4, 9, 16, 25]" in ran.text, ran.text
        pids = set(re.findall(r"pid (\d+)", ran.text))
        workers = kernel.ok("import os\nsorted(ipydistribute.get_client().run(os.getpid).values())").value()
        assert pids and all(pid in workers for pid in pids), (pids, workers)
        assert "stopped" in kernel.ok("%cluster stop").text
        wait_until(lambda: not spec_processes(marker), 30, "%cluster stop left SSH-started Dask processes")
