"""Workload 5, one repetition: from a fresh interpreter to the first result, cluster included.

``python -m bench.cold SYSTEM CORES`` prints the seconds from before the first import of the
system to its first result; the cluster is shut down afterwards, outside the timing.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import sys  # noqa: E402


def first_result(system: str, cores: int) -> object:
    """Start ``system`` from nothing; returns the result of ``3 * 3`` run on it, and a closer."""
    if system == "localcluster":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=cores, threads_per_worker=1, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        client = Client(cluster)
        value = client.submit(pow, 3, 2).result()
        return value, lambda: (client.close(), cluster.close())
    if system == "ipydistribute-api":
        import ipydistribute

        value = ipydistribute.distribute(lambda x: x * x, [3])[0]
        return value, ipydistribute.stop
    if system == "ipydistribute-magic":
        from IPython.testing.globalipapp import start_ipython

        global STARTED
        ip = start_ipython()
        STARTED = time.perf_counter()  # a notebook has its shell already: time from the first magic
        ip.run_line_magic("load_ext", "ipydistribute")
        value = ip.run_cell_magic("distribute", "x in [3] --view none", "x * x")[0]
        import ipydistribute

        return value, ipydistribute.stop
    if system == "multiprocessing":
        import multiprocessing

        pool = multiprocessing.get_context("fork").Pool(cores)
        return pool.apply(pow, (3, 2)), pool.terminate
    if system == "ray":
        import tempfile

        import ray

        ray.init(
            num_cpus=cores,
            include_dashboard=False,
            log_to_driver=False,
            _temp_dir=tempfile.mkdtemp(prefix="raybench-"),
            configure_logging=False,
        )

        def square(x: int) -> int:
            return x * x

        return ray.get(ray.remote(square).remote(3)), ray.shutdown
    if system == "ipyparallel":
        import ipyparallel as ipp

        cluster = ipp.Cluster(n=cores, log_level=40)
        rc = cluster.start_and_connect_sync()
        value = rc.load_balanced_view().apply_sync(pow, 3, 2)
        return value, lambda: (rc.close(), cluster.stop_cluster_sync())
    raise SystemExit(f"unknown system {system}")


if __name__ == "__main__":
    value, close = first_result(sys.argv[1], int(sys.argv[2]))  # type: ignore[misc]
    elapsed = time.perf_counter() - STARTED
    assert value == 9, value
    print(f"COLD {elapsed:.6f}", flush=True)
    close()
