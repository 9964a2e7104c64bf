"""Items that build Python objects (records: dicts holding tuples), where the garbage collector
works: 16 items through ``%%distribute``, against the serial loop in the kernel and a
``multiprocessing`` pool, in turn in one process, and against the same workers with CPython's
collector settings put back at run time (what ``core/worker_setup.py`` changes).

Run: ``python -m bench.object_items [--rounds 5] [--records 300000]``. Prints the medians and
the paired ratios.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import statistics
from collections.abc import Callable
from typing import Any

from . import work
from .side_dask import quiet
from .spec import timed

DEFAULTS = "magic, CPython's collector"


def _collector_defaults() -> None:
    """CPython's collector as a worker had it before the setup: every object scanned again."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--records", type=int, default=300_000)
    args = parser.parse_args()
    items = [(i, args.records) for i in range(16)]
    expected = [work.build_records(item) for item in items[:1]]
    # Forked before the cluster's threads exist, kept warm as a notebook would keep it.
    pool = multiprocessing.get_context("fork").Pool(2)
    pool.map(work.square, range(2))

    from IPython.testing.globalipapp import start_ipython

    from ipydistribute.core import cluster as cluster_mod
    from ipydistribute.core.worker_setup import spare_the_collector

    handle = cluster_mod.start_local(gpus="none")
    client = handle.client
    ip = start_ipython()
    ip.run_line_magic("load_ext", "ipydistribute")
    ip.user_ns.update(build_records=work.build_records, items=items)

    def magic() -> Any:
        return ip.run_cell_magic("distribute", "x in items --view none", "build_records(x)")

    assert magic()[:1] == expected
    forms: dict[str, Callable[[], Any]] = {
        "serial": lambda: [work.build_records(item) for item in items],
        "multiprocessing": lambda: pool.map(work.build_records, items),
        "magic": magic,
        DEFAULTS: magic,
    }
    times: dict[str, list[float]] = {name: [] for name in forms}
    for round_ in range(args.rounds):
        names = list(forms) if round_ % 2 == 0 else list(reversed(forms))
        for name in names:
            client.run(_collector_defaults if name == DEFAULTS else spare_the_collector)
            quiet(client)
            times[name].append(timed(forms[name]))
        print("  " + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in forms), flush=True)
    client.run(spare_the_collector)
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.3f} s")

    def paired(a: str, b: str) -> str:
        ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
        return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"

    print(f"speedup over serial: {paired('serial', 'magic')}; multiprocessing's: {paired('serial', 'multiprocessing')}")
    print(f"magic against multiprocessing: {paired('multiprocessing', 'magic')} faster")
    print(f"workers as set up against CPython's collector: {paired(DEFAULTS, 'magic')} faster")
    pool.terminate()
    cluster_mod.stop()


if __name__ == "__main__":
    main()
