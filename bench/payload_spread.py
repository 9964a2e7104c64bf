"""Placing a large scattered payload on every worker: broadcast from the client vs scatter to
one worker then replicate worker-to-worker. Prints the median time to have it on all workers."""

from __future__ import annotations

import statistics
import time

import numpy as np
from distributed import Client, LocalCluster, wait


def main() -> None:
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        workers = list(client.scheduler_info()["workers"])
        for mb in (8, 64):
            payload = np.random.default_rng(0).random(mb * 131072)  # mb MiB of float64
            timings: dict[str, list[float]] = {"broadcast": [], "scatter+replicate": []}
            for _ in range(5):
                started = time.perf_counter()
                future = client.scatter(payload, hash=False, workers=workers, broadcast=True)
                wait(future)
                timings["broadcast"].append(time.perf_counter() - started)
                client.cancel(future)
                started = time.perf_counter()
                future = client.scatter(payload, hash=False, workers=workers)
                client.replicate([future], workers=workers)
                timings["scatter+replicate"].append(time.perf_counter() - started)
                assert len(client.who_has([future])[future.key]) == 2
                client.cancel(future)
            for name, values in timings.items():
                print(f"{mb} MiB to 2 workers, {name}: {statistics.median(values) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
