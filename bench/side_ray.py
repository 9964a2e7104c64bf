"""Ray, written the way its documentation shows: ``@ray.remote`` tasks and ``ray.get``."""

from __future__ import annotations

import tempfile

import cloudpickle

from . import work
from .spec import Recorder, Settings, big_items, chunks, record_items, side_main, small_items

cloudpickle.register_pickle_by_value(work)


def run(s: Settings, rec: Recorder) -> None:
    import ray

    ray.init(
        num_cpus=s.cores,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=tempfile.mkdtemp(prefix="raybench-"),
        configure_logging=False,
    )
    try:
        _run(s, rec, ray)
    finally:
        ray.shutdown()


def _run(s: Settings, rec: Recorder, ray: object) -> None:
    remote = ray.remote  # type: ignore[attr-defined]
    get = ray.get  # type: ignore[attr-defined]
    square, spin_item, make_array, build_records = (
        remote(work.square),
        remote(work.spin_item),
        remote(work.make_array),
        remote(work.build_records),
    )
    sum_squares, spin_sum, add_all = (
        remote(work.sum_squares),
        remote(work.spin_sum),
        remote(work.add_all),
    )
    get([square.remote(i) for i in range(4 * s.cores)])  # warm: the worker processes are up

    def tree(refs: list[object]) -> object:
        while len(refs) > 1:
            refs = [add_all.remote(*refs[i : i + 2]) for i in range(0, len(refs), 2)]
        return get(refs[0])

    n1 = s.tiny_items_per_task
    rec.time(
        "tiny",
        "ray",
        "sum(ray.get([f.remote(x) for x in items]))",
        lambda: sum(get([square.remote(x) for x in range(n1)])),
        s.slow_repeats,
        items=n1,
        scale=s.tiny_items / n1,
        check=lambda v: v == sum(x * x for x in range(n1)),
    )
    big = big_items(s)
    rec.time(
        "cpu",
        "ray",
        "ray.get([f.remote(x) for x in items])",
        lambda: get([spin_item.remote(x) for x in big]),
        s.slow_repeats,
        items=len(big),
    )
    small = small_items(s)
    subset = small_items(s, s.small_items_per_task)
    rec.time(
        "small",
        "ray",
        "sum(ray.get([f.remote(x) for x in items]))",
        lambda: sum(get([spin_item.remote(x) for x in subset])),
        s.slow_repeats,
        items=len(subset),
        scale=len(small) / len(subset),
    )
    rec.time(
        "small",
        "ray",
        "batched by hand: f.remote(chunk), 4 per CPU",
        lambda: sum(get([spin_sum.remote(c) for c in chunks(small, 4 * s.cores)])),
        s.slow_repeats,
        items=len(small),
        note="the batching Ray's documentation recommends",
    )
    rec.time(
        "tree",
        "ray",
        "pairwise add.remote(a, b) tree",
        lambda: tree([make_array.remote(i) for i in range(s.tree_arrays)]),
        s.slow_repeats,
        items=s.tree_arrays,
    )
    records = record_items(s)
    rec.time(
        "records",
        "ray",
        "ray.get([f.remote(x) for x in items])",
        lambda: get([build_records.remote(x) for x in records]),
        s.slow_repeats,
        items=len(records),
    )
    data = list(range(s.sumsq_items))
    expect = sum(x * x for x in data)
    rec.time(
        "sumsq",
        "ray",
        "sum(ray.get([sumsq.remote(c) for c in 16 chunks]))",
        lambda: sum(get([sum_squares.remote(c) for c in chunks(data, 16)])),
        s.repeats,
        items=len(data),
        check=lambda v: v == expect,
    )


if __name__ == "__main__":
    side_main(run)
