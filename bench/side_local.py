"""Serial loops, ``multiprocessing.Pool`` and ``concurrent.futures``: the baselines."""

from __future__ import annotations

import functools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from . import work
from .spec import Recorder, Settings, big_items, record_items, side_main, small_items


def run(s: Settings, rec: Recorder) -> None:
    tiny = range(s.tiny_items)
    tiny_sum = sum(x * x for x in tiny)
    small = small_items(s)
    small_sum = sum(work.spin_item(i) for i in small)
    big = big_items(s)
    data = list(range(s.sumsq_items))
    sumsq = sum(x * x for x in data)

    rec.time(
        "tiny",
        "serial",
        "sum(x * x for x in items)",
        lambda: sum(x * x for x in tiny),
        s.repeats,
        items=s.tiny_items,
        check=lambda v: v == tiny_sum,
    )
    rec.time(
        "cpu",
        "serial",
        "[f(x) for x in items]",
        lambda: [work.spin_item(i) for i in big],
        s.slow_repeats,
        items=len(big),
    )
    rec.time(
        "small",
        "serial",
        "sum(f(x) for x in items)",
        lambda: sum(work.spin_item(i) for i in small),
        s.slow_repeats,
        items=len(small),
        check=lambda v: v == small_sum,
    )
    rec.time(
        "tree",
        "serial",
        "functools.reduce(np.add, map(make, ...))",
        lambda: functools.reduce(np.add, map(work.make_array, range(s.tree_arrays))),
        s.slow_repeats,
        items=s.tree_arrays,
    )
    rec.time(
        "sumsq",
        "serial",
        "sum(x * x for x in data)",
        lambda: sum(x * x for x in data),
        s.repeats,
        items=len(data),
        check=lambda v: v == sumsq,
    )

    records = record_items(s)
    rec.time(
        "records",
        "serial",
        "[f(x) for x in items] (a fresh process)",
        lambda: [work.build_records(x) for x in records],
        s.slow_repeats,
        items=len(records),
    )

    # A warm pool, as a notebook keeps one: its start is workload 5's business.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(s.cores) as pool:
        pool.map(work.square, range(s.cores))
        rec.time(
            "tiny",
            "multiprocessing",
            "sum(pool.map(f, items))",
            lambda: sum(pool.map(work.square, tiny)),
            s.repeats,
            items=s.tiny_items,
            check=lambda v: v == tiny_sum,
        )
        rec.time(
            "cpu",
            "multiprocessing",
            "pool.map(f, items)",
            lambda: pool.map(work.spin_item, big),
            s.slow_repeats,
            items=len(big),
        )
        rec.time(
            "small",
            "multiprocessing",
            "sum(pool.map(f, items))",
            lambda: sum(pool.map(work.spin_item, small)),
            s.slow_repeats,
            items=len(small),
            check=lambda v: v == small_sum,
        )
        rec.time(
            "tree",
            "multiprocessing",
            "reduce(np.add, pool.imap_unordered(make, ...))",
            lambda: functools.reduce(
                np.add, pool.imap_unordered(work.make_array, range(s.tree_arrays), 8)
            ),
            s.slow_repeats,
            items=s.tree_arrays,
        )
        rec.time(
            "records",
            "multiprocessing",
            "pool.map(f, items)",
            lambda: pool.map(work.build_records, records),
            s.slow_repeats,
            items=len(records),
        )
        rec.time(
            "sumsq",
            "multiprocessing",
            "sum(pool.map(square, data))",
            lambda: sum(pool.map(work.square, data)),
            s.repeats,
            items=len(data),
            check=lambda v: v == sumsq,
        )
    with ProcessPoolExecutor(s.cores, mp_context=ctx) as executor:
        list(executor.map(work.square, range(s.cores)))
        rec.time(
            "cpu",
            "concurrent.futures",
            "list(executor.map(f, items))",
            lambda: list(executor.map(work.spin_item, big)),
            s.slow_repeats,
            items=len(big),
        )


if __name__ == "__main__":
    side_main(run)
