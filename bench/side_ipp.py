"""ipyparallel, written the way its documentation shows: a DirectView (``%px``, ``view.map``)
and a load-balanced view."""

from __future__ import annotations

import functools

import cloudpickle
import numpy as np

from . import work
from .spec import Recorder, Settings, big_items, chunks, record_items, side_main, small_items

cloudpickle.register_pickle_by_value(work)


def run(s: Settings, rec: Recorder) -> None:
    import ipyparallel as ipp

    cluster = ipp.Cluster(n=s.cores, log_level=40)
    rc = cluster.start_and_connect_sync()
    try:
        rc.wait_for_engines(s.cores, timeout=120)
        _run(s, rec, rc)
    finally:
        rc.close()
        cluster.stop_cluster_sync()


def _run(s: Settings, rec: Recorder, rc: object) -> None:
    dview = rc[:]  # type: ignore[index]
    lview = rc.load_balanced_view()  # type: ignore[attr-defined]
    dview.use_cloudpickle()
    dview.map_sync(work.square, range(s.cores))

    # One message per item takes about 6 ms here: a subset of at most 2,000 items, scaled.
    n1 = min(2_000, s.tiny_items_per_task // 3)
    rec.time(
        "tiny",
        "ipyparallel",
        "sum(lview.map_sync(f, items))",
        lambda: sum(lview.map_sync(work.square, range(n1))),
        s.slow_repeats,
        items=n1,
        scale=s.tiny_items / n1,
    )
    rec.time(
        "tiny",
        "ipyparallel",
        "sum(dview.map_sync(f, items))",
        lambda: sum(dview.map_sync(work.square, range(s.tiny_items))),
        s.repeats,
        items=s.tiny_items,
    )
    big = big_items(s)
    rec.time(
        "cpu",
        "ipyparallel",
        "lview.map_sync(f, items)",
        lambda: lview.map_sync(work.spin_item, big),
        s.slow_repeats,
        items=len(big),
    )
    small = small_items(s)
    rec.time(
        "small",
        "ipyparallel",
        "sum(dview.map_sync(f, items))",
        lambda: sum(dview.map_sync(work.spin_item, small)),
        s.slow_repeats,
        items=len(small),
    )
    subset = small_items(s, n1)
    rec.time(
        "small",
        "ipyparallel",
        "sum(lview.map_sync(f, items))",
        lambda: sum(lview.map_sync(work.spin_item, subset)),
        s.slow_repeats,
        items=len(subset),
        scale=len(small) / len(subset),
    )

    def tree() -> object:
        # %px style: each engine sums its share, the client adds the partial sums.
        dview.scatter("idx", list(range(s.tree_arrays)), block=True)
        dview.execute("part = functools.reduce(np.add, map(make_array, idx))", block=True)
        return functools.reduce(np.add, dview.pull("part", block=True))

    dview.push({"make_array": work.make_array}, block=True)
    dview.execute("import functools; import numpy as np", block=True)
    rec.time(
        "tree",
        "ipyparallel",
        "%px: scatter, reduce per engine, pull",
        tree,
        s.slow_repeats,
        items=s.tree_arrays,
    )
    records = record_items(s)
    rec.time(
        "records",
        "ipyparallel",
        "lview.map_sync(f, items)",
        lambda: lview.map_sync(work.build_records, records),
        s.slow_repeats,
        items=len(records),
    )
    data = list(range(s.sumsq_items))
    expect = sum(x * x for x in data)
    rec.time(
        "sumsq",
        "ipyparallel",
        "sum(dview.map_sync(sumsq, 16 chunks))",
        lambda: sum(dview.map_sync(work.sum_squares, chunks(data, 16))),
        s.repeats,
        items=len(data),
        check=lambda v: v == expect,
    )


if __name__ == "__main__":
    side_main(run)
