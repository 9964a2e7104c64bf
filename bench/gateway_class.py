"""``python -m bench.gateway_class [USERS]``: a class through one dask-gateway, measured.

USERS simulated students (default 8), each a real kernel, all at once: ``%cluster gateway
--workers 1``, then a ``%%distribute`` cell of 8 items of 0.25 s of CPU each. It reports, per
user, the seconds to a running cluster, to the first worker, and the cell's time; and what the
gateway's processes hold: the memory of each cluster (its scheduler and worker processes) and
of the gateway itself. The gateway is the one the deployment tests use
(tests/deploy/gateway/dask_gateway_config.py), with as many clusters allowed as users.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from deploy_servers import start_gateway  # noqa: E402
from kernel_helpers import Kernel  # noqa: E402

CELL = "%%distribute x in range(8) --view none\nimport time\nt = time.process_time()\n" \
       "while time.process_time() - t < 0.25: pass\nx"
PASSWORD = "bench"


def one_user(url: str, name: str, results: dict[str, Any], barrier: threading.Barrier) -> None:
    env = {"DASK_GATEWAY__ADDRESS": url, "DASK_GATEWAY__AUTH__TYPE": "basic",
           "DASK_GATEWAY__AUTH__KWARGS__USERNAME": name, "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": PASSWORD}
    with Kernel(env) as kernel:
        kernel.ok("%load_ext ipydistribute")
        barrier.wait()
        start = time.monotonic()
        kernel.ok("%cluster gateway --workers 1", timeout=600)
        cluster = time.monotonic() - start
        kernel.ok("import ipydistribute\nipydistribute.get_client().wait_for_workers(1, timeout=600)", timeout=600)
        worker = time.monotonic() - start
        begin = time.monotonic()
        ran = kernel.ok(CELL, timeout=600)
        cell = time.monotonic() - begin
        assert "[0, 1, 2, 3, 4, 5, 6, 7]" in ran.text, ran.text
        results[name] = {"cluster_s": cluster, "first_worker_s": worker, "cell_s": cell}
        barrier.wait()  # every cluster is up at once when memory is measured
        barrier.wait()  # ... and stays until then


def memory_of(server_pid: int, clusters_dir: Path) -> dict[str, Any]:
    """RSS in MiB: the gateway (with its proxy), each cluster (every process in its directory),
    and each student's kernel (this process's children running ipykernel)."""
    gateway = psutil.Process(server_pid)
    own = gateway.memory_info().rss
    clusters: dict[str, float] = {}
    for child in gateway.children(recursive=True):
        try:
            cwd, rss = Path(child.cwd()), child.memory_info().rss
        except psutil.Error:
            continue
        if clusters_dir in cwd.parents:
            clusters[cwd.name] = clusters.get(cwd.name, 0.0) + rss / 2**20
        else:
            own += rss
    kernels = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                kernels.append(child.memory_info().rss / 2**20)
        except psutil.Error:
            continue
    return {"gateway_mib": own / 2**20, "per_cluster_mib": sorted(clusters.values()), "clusters": len(clusters),
            "per_kernel_mib": statistics.median(kernels) if kernels else None}


def main(users: int = 8) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_gateway(Path(folder), PASSWORD, env={"GATEWAY_MAX_CLUSTERS_PER_USER": "1"})
        try:
            results: dict[str, Any] = {}
            barrier = threading.Barrier(users + 1)
            threads = [threading.Thread(target=one_user, args=(url, f"student{i}", results, barrier))
                       for i in range(users)]
            for thread in threads:
                thread.start()
            barrier.wait()  # all kernels ready: go
            barrier.wait()  # all cells done
            memory = memory_of(server.proc.pid, Path(folder) / "gateway" / "clusters")
            load = psutil.getloadavg()
            barrier.wait()
            for thread in threads:
                thread.join()
        finally:
            server.stop()
    summary: dict[str, Any] = {"users": users, "cores": psutil.cpu_count(), "load_1min": load[0], **memory}
    for key in ("cluster_s", "first_worker_s", "cell_s"):
        values = sorted(r[key] for r in results.values())
        summary[key] = {"median": statistics.median(values), "max": values[-1]}
    return summary


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8), indent=1))
