"""%%distribute on a real local cluster through a real IPython shell: forms and values."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from ipydistribute.core import identity


def test_map_returns_values_in_item_order(ip):
    result = ip.run_cell_magic("distribute", "x in range(50)", "x * x")
    assert result == [x * x for x in range(50)]


def test_reduce_runs_on_the_cluster(ip):
    result = ip.run_cell_magic("distribute", "x in range(10_000) --reduce sum", "x * 2")
    assert result == sum(x * 2 for x in range(10_000))


def test_lists_of_numbers_arrive_with_their_own_types(ip):
    # Plain ints and floats travel as machine numbers (core/number_lists.py); bools, larger ints
    # and int subclasses must still arrive as what they are.
    ints = list(range(-100_000, 100_000, 3))
    ip.user_ns["data"] = data = ints + [0.5, True, 2**40, collections.Counter().total()] + ints
    result = ip.run_cell_magic("distribute", "x in data", "type(x).__name__, x")
    assert result == [(type(x).__name__, x) for x in data]
    ip.user_ns["floats"] = floats = [i / 3 for i in range(-50_000, 50_000)] + [float("nan"), -0.0]
    result = ip.run_cell_magic("distribute", "x in floats --batch 20000", "repr(x)")
    assert result == [repr(x) for x in floats]


def test_out_stores_value_and_cell_reads_notebook_names(ip):
    ip.user_ns["offset"] = 100

    def helper(v):
        return v + offset  # noqa: F821 - comes from the notebook namespace on the worker

    ip.user_ns["helper"] = helper
    ip.run_cell("def twice(v):\n    return 2 * v\n")
    out = ip.run_cell_magic("distribute", "x in range(5) --out values", "y = twice(x)\ny + offset")
    assert out is None
    assert ip.user_ns["values"] == [2 * x + 100 for x in range(5)]


def test_tuple_target_and_enumerate(ip):
    ip.user_ns["rows"] = ["a", "bb", "ccc"]
    result = ip.run_cell_magic("distribute", "i, row in enumerate(rows)", "f'{i}:{row}'")
    assert result == ["0:a", "1:bb", "2:ccc"]


def test_numpy_array_items(ip):
    ip.user_ns["arr"] = np.arange(12).reshape(6, 2)
    result = ip.run_cell_magic("distribute", "row in arr", "int(row.sum())")
    assert result == [int(r.sum()) for r in np.arange(12).reshape(6, 2)]


def test_classes_defined_in_notebook_work_on_workers(ip):
    ip.run_cell("class Point:\n    def __init__(self, x):\n        self.x = x\n"
                "    def norm(self):\n        return abs(self.x)\n")
    result = ip.run_cell_magic("distribute", "v in [-3, 4]", "Point(v).norm()")
    assert result == [3, 4]


def test_counter_merge_reducer(ip):
    ip.run_cell("from collections import Counter\ndef merge(counters):\n    return sum(counters, Counter())\n")
    ip.user_ns["docs"] = ["a b a", "b c", "a"]
    result = ip.run_cell_magic("distribute", "doc in docs --reduce merge", "Counter(doc.split())")
    assert result == collections.Counter("a b a b c a".split())


def test_line_magic_returns_value(ip):
    ip.run_cell("squares = %distribute x * x for x in range(10)")
    assert ip.user_ns["squares"] == [x * x for x in range(10)]


def test_single_run_without_iterable(ip):
    result = ip.run_cell_magic("distribute", "", "import os\nos.getpid()")
    assert isinstance(result, int) and result != __import__("os").getpid()


def test_generator_is_consumed_lazily_with_reduce(ip):
    pulled = []

    def numbers(n):
        for i in range(n):
            pulled.append(i)
            yield i

    ip.user_ns["numbers"] = numbers
    result = ip.run_cell_magic("distribute", "x in numbers(20_000) --reduce sum", "x")
    assert result == sum(range(20_000))
    assert len(pulled) == 20_000


def test_explicit_batch_size_gives_same_values(ip):
    result = ip.run_cell_magic("distribute", "x in range(100) --batch 7", "x + 1")
    assert result == list(range(1, 101))


def test_empty_iterable_gives_empty_list_and_reducer_default(ip):
    assert ip.run_cell_magic("distribute", "x in []", "x") == []
    assert ip.run_cell_magic("distribute", "x in [] --reduce sum", "x") == 0


def test_all_runs_once_per_worker_and_names_stay(ip, client):
    values = ip.run_cell_magic("distribute", "--all", "import os\nsetup_marker = 41\nos.getpid()")
    workers = identity.workers(client)
    assert set(values) == set(workers)
    assert len(set(values.values())) == len(workers)
    result = ip.run_cell_magic("distribute", "x in range(6)", "setup_marker + x")
    assert result == [41 + x for x in range(6)]


def test_python_api(client):
    import ipydistribute

    assert ipydistribute.distribute(lambda x: x + 1, range(5)) == [1, 2, 3, 4, 5]
    assert ipydistribute.distribute(lambda x: x, range(101), reduce=sum) == 5050
    run = ipydistribute.distribute(lambda x: x * 3, [1, 2], wait=False)
    assert run.result(timeout=60) == [3, 6]
    assert run.done()


@pytest.mark.parametrize("on_error, expected", [("skip", [0, 4]), ("collect", None)])
def test_on_error_skip_and_collect(ip, on_error, expected):
    cell = "if x == 1:\n    raise ValueError('bad one')\nx * 2"
    with pytest.warns(RuntimeWarning, match="1 item") if on_error == "skip" else _nothing():
        result = ip.run_cell_magic("distribute", f"x in range(3) --on-error {on_error} --batch 1", cell)
    if expected is not None:
        assert result == expected
    else:
        assert result[0] == 0 and result[2] == 4
        assert result[1].exc_type == "ValueError" and "bad one" in result[1].message


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
