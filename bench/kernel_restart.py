"""Restarting a kernel that holds a cluster, as a notebook's "Restart kernel" does: seconds from
the restart request until the new kernel answers, and whether the old one exited by itself.

``python -m bench.kernel_restart [REPEATS]`` prints one line per case and repetition, then the
medians and their ratios (the machine is noisy: compare cases of the same run). The cases: the
kernel holds ipydistribute's embedded cluster of 2 workers (``%cluster start``), a Dask
LocalCluster of 2 worker processes made in the kernel as Dask's documentation does, or nothing.
"""

from __future__ import annotations

import statistics
import sys
import time

from jupyter_client.manager import KernelManager

CASES = {
    "ipydistribute %cluster start": "%load_ext ipydistribute\n%cluster start --workers 2 --gpus none\n"
                                    "%distribute x * x for x in range(10)",
    "dask LocalCluster": "from distributed import Client, LocalCluster\n"
                         "client = Client(LocalCluster(n_workers=2, threads_per_worker=1))\n"
                         "client.gather(client.map(abs, range(10)))",
    "no cluster": "import time",
}


def restart_seconds(code: str) -> tuple[float, int | None]:
    """Seconds until the restarted kernel answers, and the old kernel's return code."""
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
        assert reply["content"]["status"] == "ok", reply["content"]
        old = km.provisioner.process  # type: ignore[union-attr]
        started = time.perf_counter()
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        seconds = time.perf_counter() - started
        return seconds, old.poll()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for i in range(repeats):
        for name, code in CASES.items():  # interleaved: load changes hit every case alike
            seconds, code_left = restart_seconds(code)
            times[name].append(seconds)
            how = "exited by itself" if code_left == 0 else f"ended with return code {code_left}"
            print(f"  {i + 1}: {name:<30} restart {seconds:5.2f} s, the old kernel {how}", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["no cluster"]
    for name, median in medians.items():
        print(f"{name:<30} median restart {median:5.2f} s ({median / base:4.1f}x a kernel without a cluster)")
    ours, dask = medians["ipydistribute %cluster start"], medians["dask LocalCluster"]
    print(f"ipydistribute / Dask LocalCluster: {ours / dask:.2f}x")


if __name__ == "__main__":
    main()
