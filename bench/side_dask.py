"""ipydistribute (``%%distribute`` through a real IPython shell, and the Python API) and
hand-written Dask, on the same embedded cluster, measured in turn."""

from __future__ import annotations

import functools
import gc
import multiprocessing
import time

import cloudpickle

from . import work
from .spec import SAME_RUN, Recorder, Settings, big_items, chunks, record_items, side_main, small_items

# Functions a notebook defines travel by value, not by import: do the same with ours.
cloudpickle.register_pickle_by_value(work)


def pairwise_tree(client: object, futures: list[object]) -> object:
    """The tree reduction of Dask's documentation: add neighbours until one future is left."""
    while len(futures) > 1:
        futures = [
            client.submit(work.add_all, *futures[i : i + 2]) for i in range(0, len(futures), 2)
        ]  # type: ignore[attr-defined]
    return futures[0]


def quiet(client: object, timeout: float = 5.0) -> None:
    """Wait until the scheduler holds no task (the last form's keys are forgotten), then collect
    the kernel's garbage: what a notebook's next cell finds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gc.collect()
        if not client.run_on_scheduler(_task_count):  # type: ignore[attr-defined]
            return
        time.sleep(0.01)


def _task_count(dask_scheduler: object) -> int:
    return len(dask_scheduler.tasks)  # type: ignore[attr-defined]


def run(s: Settings, rec: Recorder) -> None:
    import dask.bag as db
    from IPython.testing.globalipapp import start_ipython

    import ipydistribute
    from ipydistribute.core import cluster as cluster_mod

    # Forked before the cluster's threads exist, and kept warm as a notebook would keep it: the
    # baseline of workload 2 timed in turn with the cluster (the machine drifts between sides).
    pool = multiprocessing.get_context("fork").Pool(s.cores)
    pool.map(work.square, range(s.cores))
    handle = cluster_mod.start_local(gpus="none")  # what the first %%distribute starts
    client = handle.client
    settle = functools.partial(quiet, client)
    ip = start_ipython()
    ip.run_line_magic("load_ext", "ipydistribute")
    ns = ip.user_ns
    ns.update(square=work.square, spin_item=work.spin_item, make_array=work.make_array,
              build_records=work.build_records)

    def magic(line: str, cell: str) -> object:
        return ip.run_cell_magic("distribute", line + " --view none", cell)

    magic("x in range(100) --reduce sum", "x * x")  # warm: workers import what the cell needs
    client.submit(work.square, 1).result()

    # 1. tiny tasks: one task per item against hand-written Dask, then auto batching.
    n1 = s.tiny_items_per_task
    expect1 = sum(x * x for x in range(n1))
    rec.compare(
        "tiny",
        [
            (
                "ipydistribute",
                "%%distribute --batch 1 --reduce sum",
                lambda: magic(f"x in range({n1}) --batch 1 --reduce sum", "x * x"),
            ),
            (
                "ipydistribute",
                "distribute(f, items, batch=1, reduce=sum)",
                lambda: ipydistribute.distribute(work.square, range(n1), batch=1, reduce=sum),
            ),
            (
                "dask",
                "client.submit(sum, client.map(f, items))",
                lambda: client.submit(sum, client.map(work.square, range(n1))).result(),
            ),
        ],
        s.slow_repeats,
        items=n1,
        settle=settle,
        check=lambda v: v == expect1,
    )
    n = s.tiny_items
    expect = sum(x * x for x in range(n))
    rec.compare(
        "tiny",
        [
            (
                "ipydistribute",
                "%%distribute --reduce sum (auto batch)",
                lambda: magic(f"x in range({n}) --reduce sum", "x * x"),
            ),
            (
                "ipydistribute",
                "distribute(f, items, reduce=sum)",
                lambda: ipydistribute.distribute(work.square, range(n), reduce=sum),
            ),
            (
                "dask",
                "db.from_sequence(items).map(f).sum()",
                lambda: db.from_sequence(range(n)).map(work.square).sum().compute(),
            ),
        ],
        s.repeats,
        items=n,
        settle=settle,
        check=lambda v: v == expect,
    )

    # 2. CPU-bound items.
    ns["big"] = big = big_items(s)
    rec.compare(
        "cpu",
        [
            # The serial loop again, in this process and in turn with the others: this machine's
            # speed drifts by 10-20% between processes and minutes, more than the target's margin.
            ("serial", SAME_RUN + "[f(x) for x in items]", lambda: [work.spin_item(x) for x in big]),
            ("multiprocessing", SAME_RUN + "pool.map(f, items)", lambda: pool.map(work.spin_item, big)),
            ("ipydistribute", "%%distribute x in big", lambda: magic("x in big", "spin_item(x)")),
            (
                "ipydistribute",
                "distribute(f, items)",
                lambda: ipydistribute.distribute(work.spin_item, big),
            ),
            (
                "dask",
                "client.gather(client.map(f, items))",
                lambda: client.gather(client.map(work.spin_item, big)),
            ),
        ],
        s.slow_repeats,
        items=len(big),
        settle=settle,
    )

    # 3. many small items, summed.
    ns["small"] = small = small_items(s)
    expect3 = sum(work.spin_item(i) for i in small)
    rec.compare(
        "small",
        [
            (
                "ipydistribute",
                "%%distribute --reduce sum (auto batch)",
                lambda: magic("x in small --reduce sum", "spin_item(x)"),
            ),
            (
                "ipydistribute",
                "distribute(f, items, reduce=sum)",
                lambda: ipydistribute.distribute(work.spin_item, small, reduce=sum),
            ),
            # Default partitioning: thousands of partitions of a long list (minutes). Use 16.
            (
                "dask",
                "db.from_sequence(items, npartitions=16).map(f).sum()",
                lambda: db.from_sequence(small, npartitions=16).map(work.spin_item).sum().compute(),
            ),
        ],
        s.slow_repeats,
        items=len(small),
        settle=settle,
        check=lambda v: v == expect3,
    )
    subset = small_items(s, s.small_items_per_task)
    rec.compare(
        "small",
        [
            (
                "dask",
                "client.submit(sum, client.map(f, items))",
                lambda: client.submit(sum, client.map(work.spin_item, subset)).result(),
            ),
        ],
        s.slow_repeats,
        items=len(subset),
        settle=settle,
        scale=len(small) / len(subset),
    )

    # 4. tree reduction of arrays made on the workers.
    m = s.tree_arrays
    rec.compare(
        "tree",
        [
            (
                "ipydistribute",
                "%%distribute i in range(N) --reduce sum",
                lambda: magic(f"i in range({m}) --reduce sum", "make_array(i)"),
            ),
            (
                "ipydistribute",
                "distribute(make, range(N), reduce=sum)",
                lambda: ipydistribute.distribute(work.make_array, range(m), reduce=sum),
            ),
            (
                "dask",
                "pairwise client.submit(add, a, b) tree",
                lambda: pairwise_tree(client, client.map(work.make_array, range(m))).result(),
            ),  # type: ignore[attr-defined]
            (
                "dask",
                "db.from_sequence(range(N)).map(make).sum()",
                lambda: db.from_sequence(range(m)).map(work.make_array).sum().compute(),
            ),
        ],
        s.slow_repeats,
        items=m,
        settle=settle,
    )

    # 7. sum of squares of a list shipped from the notebook.
    ns["data"] = data = list(range(s.sumsq_items))
    expect7 = sum(x * x for x in data)
    rec.compare(
        "sumsq",
        [
            ("serial", SAME_RUN + "sum(x * x for x in data)", lambda: sum(x * x for x in data)),
            (
                "serial",
                SAME_RUN + "sum(square(x) for x in data)",
                lambda: sum(work.square(x) for x in data),
            ),
            (
                "ipydistribute",
                "%%distribute x in data --reduce sum",
                lambda: magic("x in data --reduce sum", "x * x"),
            ),
            (
                "ipydistribute",
                "distribute(square, data, reduce=sum)",
                lambda: ipydistribute.distribute(work.square, data, reduce=sum),
            ),
            (
                "dask",
                "sum(client.gather(client.map(sumsq, 16 chunks)))",
                lambda: sum(client.gather(client.map(work.sum_squares, chunks(data, 16)))),
            ),
            (
                "dask",
                "db.from_sequence(data, npartitions=16).map(f).sum()",
                lambda: db.from_sequence(data, npartitions=16).map(work.square).sum().compute(),
            ),
        ],
        s.repeats,
        items=len(data),
        settle=settle,
        check=lambda v: v == expect7,
    )

    # 8. Items that build objects: the garbage collector's work (core/worker_setup.py).
    ns["records"] = records = record_items(s)
    rec.compare(
        "records",
        [
            ("serial", SAME_RUN + "[f(x) for x in items]", lambda: [work.build_records(x) for x in records]),
            ("multiprocessing", SAME_RUN + "pool.map(f, items)", lambda: pool.map(work.build_records, records)),
            ("ipydistribute", "%%distribute x in records", lambda: magic("x in records", "build_records(x)")),
            (
                "ipydistribute",
                "distribute(f, items)",
                lambda: ipydistribute.distribute(work.build_records, records),
            ),
            (
                "dask",
                "client.gather(client.map(f, items))",
                lambda: client.gather(client.map(work.build_records, records)),
            ),
        ],
        s.slow_repeats,
        items=len(records),
        settle=settle,
    )
    cluster_mod.stop()
    pool.terminate()


if __name__ == "__main__":
    side_main(run)
