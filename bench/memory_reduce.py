"""Peak memory of a reduction over large values: ``python -m bench.memory_reduce``.

60 items each make a 16 MB array; the values are summed. The extra memory of the kernel's
process and every process under it (workers, nannies, joblib's pool) is sampled every 10 ms
while the work runs, above what they held just before. joblib's generator mode, summing
values in the parent as they arrive, runs in the same process as the baseline: it holds about
one value per worker plus the sum.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

ITEMS = 60
VALUE_BYTES = 16 * 2**20


def make(i: int) -> Any:
    return np.full(VALUE_BYTES // 8, float(i))


def _tree_rss() -> int:
    me = psutil.Process()
    total = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def peak_extra(work: Callable[[], Any]) -> tuple[int, Any, float]:
    """(peak extra bytes, work's value, seconds) with the process tree sampled every 10 ms."""
    base = _tree_rss()
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        value = work()
    finally:
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    return peak - base, value, elapsed


def with_ipydistribute(batch: int | str = "auto") -> Any:
    import ipydistribute

    return ipydistribute.distribute(make, range(ITEMS), reduce=sum, batch=batch)


def with_joblib_generator() -> Any:
    from joblib import Parallel, delayed

    total = None
    for value in Parallel(n_jobs=2, return_as="generator")(delayed(make)(i) for i in range(ITEMS)):
        total = value if total is None else total + value
    return total


def main() -> None:
    import ipydistribute

    ipydistribute.start(workers=2)
    expected = float(sum(range(ITEMS)))
    # Warm both (worker imports, joblib's pool) so that start-up memory is not counted.
    ipydistribute.distribute(make, range(2), reduce=sum)
    with_joblib_generator()
    rows = []
    forms: list[tuple[str, Callable[[], Any]]] = [
        ("joblib generator", with_joblib_generator),
        ("ipydistribute --reduce sum", with_ipydistribute),
        ("ipydistribute --reduce sum --batch 1", lambda: with_ipydistribute(1)),
        ("joblib generator (again)", with_joblib_generator),
        ("ipydistribute --reduce sum (again)", with_ipydistribute),
    ]
    for name, work in forms:
        extra, value, seconds = peak_extra(work)
        assert float(value[0]) == expected, name
        rows.append((name, extra, seconds))
    base = rows[0][1]
    print(f"{ITEMS} arrays of {VALUE_BYTES / 2**20:.0f} MiB summed; peak extra memory of kernel + workers:")
    for name, extra, seconds in rows:
        print(f"  {name:36s} {extra / 2**30:5.2f} GiB  ({extra / max(base, 1):4.2f}x joblib)  {seconds:5.2f} s")
    ipydistribute.stop()


if __name__ == "__main__":
    main()
