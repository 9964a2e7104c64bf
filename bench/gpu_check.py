"""GPU check: a real ``%%distribute --gpu`` cell on the auto-detected GPU worker(s).

Run on a machine with an NVIDIA GPU (and CuPy or PyTorch, and ``nvidia-ml-py``)::

    .venv/bin/python bench/gpu_check.py          # a report; exit status 0 when every check passed
    .venv/bin/python bench/gpu_check.py --json   # the same as JSON (used by tests/test_cluster_gpu.py)

It starts the embedded cluster with ``--gpus auto`` (one worker per GPU, resource ``GPU=1``, its own
``CUDA_VISIBLE_DEVICES``), runs a cell doing matrix products on the GPU with whichever of CuPy and
PyTorch is installed, checks that every item ran on a real GPU worker (never on a CPU or simulated
one), and that the scheduler reports the worker's GPU utilisation and memory (Dask's NVML metrics).
Exit status 2 means there is no GPU to check (the reason is printed).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

CELL = '''
import os, time
from distributed import get_worker
try:
    import cupy as xp
    lib = "cupy"
except ImportError:
    import torch
    lib = "torch"
n = 4096
started = time.perf_counter()
if lib == "cupy":
    a = xp.random.random((n, n), dtype=xp.float32)
    for _ in range(20):
        a = (a @ a) / n
    checksum = float(a.sum())
    xp.cuda.Stream.null.synchronize()
    device = xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)["name"].decode()
else:
    a = torch.rand((n, n), device="cuda")
    for _ in range(20):
        a = (a @ a) / n
    checksum = float(a.sum())
    torch.cuda.synchronize()
    device = torch.cuda.get_device_name(0)
(get_worker().name, os.environ.get("CUDA_VISIBLE_DEVICES"), lib, device, time.perf_counter() - started, checksum)
'''


def gpu_library() -> str | None:
    for name in ("cupy", "torch"):
        try:
            __import__(name)
        except ImportError:
            continue
        return name
    return None


def check(items: int = 8) -> dict[str, Any]:
    """Run the GPU cell and look at the metrics; returns a report with ``ok`` and ``checks``."""
    from IPython.testing.globalipapp import start_ipython

    from ipydistribute.core import cluster
    from ipydistribute.core.cluster_snapshot import take
    from ipydistribute.core.gpus import detect_gpus

    state, gpus = detect_gpus()
    report: dict[str, Any] = {"gpu_state": state.value, "gpus": [g.name for g in gpus], "checks": {}}
    if not gpus:
        report.update(ok=False, skipped=f"no GPU: {state.value}")
        return report
    library = gpu_library()
    if library is None:
        report.update(ok=False, skipped="neither CuPy nor PyTorch is installed: pip install cupy-cuda12x (or torch)")
        return report
    shell = start_ipython()
    shell.run_line_magic("load_ext", "ipydistribute")
    started = time.perf_counter()
    shell.run_line_magic("cluster", "start --gpus auto --workers 1")
    report["cluster_start_s"] = round(time.perf_counter() - started, 2)
    try:
        handle = cluster.chosen()
        assert handle is not None
        started = time.perf_counter()
        rows = shell.run_cell_magic("distribute", f"i in range({items}) --gpu 1 --batch 1 --view none", CELL)
        report["cell_s"] = round(time.perf_counter() - started, 2)
        report["items"] = [list(row[:4]) + [round(row[4], 3)] for row in rows]
        names = {row[0] for row in rows}
        checks = report["checks"]
        checks["ran on GPU workers only"] = all(str(n).startswith("gpu-") for n in names)
        checks["each GPU worker sees one device"] = all(row[1] is not None and "," not in row[1] for row in rows)
        checks["results are finite"] = all(row[5] == row[5] for row in rows)
        # Dask's NVML metrics arrive with the workers' heartbeats: give them a few seconds.
        deadline = time.monotonic() + 15
        gpu_rows: list[Any] = []
        while time.monotonic() < deadline:
            gpu_rows = [w for w in take(handle).workers if w.gpu == "real"]
            if gpu_rows and all(w.gpu_memory_used is not None for w in gpu_rows):
                break
            time.sleep(0.5)
        report["metrics"] = [{"name": w.name, "gpu": w.gpu_name, "utilization": w.gpu_utilization,
                              "memory_used": w.gpu_memory_used, "memory_total": w.gpu_memory_total}
                             for w in gpu_rows]
        checks["one real GPU worker per GPU"] = len(gpu_rows) == len(gpus)
        checks["GPU metrics reported"] = bool(gpu_rows) and all(
            w.gpu_utilization is not None and w.gpu_memory_used is not None for w in gpu_rows)
        checks["GPU memory in use"] = bool(gpu_rows) and all((w.gpu_memory_used or 0) > 0 for w in gpu_rows)
        report["ok"] = all(checks.values())
        return report
    finally:
        shell.run_line_magic("cluster", "stop")


def main(argv: list[str]) -> int:
    report = check()
    if "--json" in argv:
        print(json.dumps(report))
    else:
        print(f"GPUs: {report['gpus'] or 'none'} ({report['gpu_state']})")
        for key in ("cluster_start_s", "cell_s", "items", "metrics"):
            if key in report:
                print(f"{key}: {report[key]}")
        for name, passed in report["checks"].items():
            print(f"  {'ok ' if passed else 'FAIL'} {name}")
        if "skipped" in report:
            print(f"skipped: {report['skipped']}")
    if "skipped" in report:
        return 2
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
