"""The worker side and the pictures without a cluster: the wire types, the batch loop and its
output capture, the graph layout and the static picture. Real objects throughout; the only thing
missing is Dask (outside a task the capture writes to the process's own stdout)."""

from __future__ import annotations

import pickle
from array import array

import numpy as np
import pytest
from dask.sizeof import sizeof

from ipydistribute.core import task, wire
from ipydistribute.core.cellfunc import CellCode
from ipydistribute.core.cluster_snapshot import worker_row
from ipydistribute.core.errors import ItemError, ItemFailure
from ipydistribute.core.keys import new_token, parse_key, task_key
from ipydistribute.core.monitor import Bar, GroupSnapshot, Snapshot
from ipydistribute.core.options import RunOptions
from ipydistribute.core.run import make_payload
from ipydistribute.core.task import run_batch
from ipydistribute.core.wire import CACHED_PAYLOAD_BYTES, Batch, BatchResult, Partial, Payload
from ipydistribute.widgets.graph_layout import layout
from ipydistribute.widgets.static import gpu_text, run_html, run_png
from ipydistribute.widgets.summary import figures, pace

pytestmark = pytest.mark.fast


def _payload(source: str, topic: str | None = None, **options: object) -> Payload:
    cell = CellCode.from_source(source, "<cell fast>", "x")
    return make_payload("fast", new_token(), cell=cell, options=RunOptions(**options), topic=topic)


# --- wire types -----------------------------------------------------------------------------

def test_a_batch_pickles_its_items_once_and_unpacks_them_on_first_use():
    batch = Batch(10, [{"a": 1}, [2, 3], "four"])
    copy = pickle.loads(pickle.dumps(batch, protocol=5))
    assert (copy.start, len(copy), copy.items) == (10, 3, [{"a": 1}, [2, 3], "four"])
    assert copy._items is not None and copy._blob is None  # unpacked once, the buffer dropped


def test_large_batches_travel_out_of_band_and_small_ones_inside_the_pickle():
    buffers: list[pickle.PickleBuffer] = []
    small = pickle.dumps(Batch(0, [1, 2, 3]), protocol=5, buffer_callback=buffers.append)
    assert not buffers and pickle.loads(small).items == [1, 2, 3]
    big = pickle.dumps(Batch(0, list(range(100_000))), protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1 and len(big) < 1000
    assert list(pickle.loads(big, buffers=buffers).items) == list(range(100_000))


def test_large_batches_are_handed_to_a_scheduler_in_this_process_not_copied():
    big, small = Batch(7, list(range(100_000))), Batch(0, [1, 2, 3])
    with wire.handing_over(True):
        graph = pickle.dumps([big, small], protocol=5)
    assert len(graph) < 1000  # a handle for the large batch, the small one inside as always
    handed, copy = pickle.loads(graph)
    assert handed._blob is big.pack() and (handed.start, len(handed)) == (7, 100_000)  # the same bytes
    assert list(handed.items) == list(range(100_000)) and copy.items == [1, 2, 3]
    assert wire._HANDED == {}  # taken once, then only the scheduler holds them
    # Sent on to a worker (the scheduler's own thread hands nothing): the items themselves.
    assert len(pickle.dumps(handed, protocol=5)) > 100_000
    with wire.handing_over(False):
        assert len(pickle.dumps(big, protocol=5)) > 100_000  # the scheduler is elsewhere: a copy
    with pytest.raises(RuntimeError), wire.handing_over(True):
        pickle.dumps(big, protocol=5)
        raise RuntimeError("the graph was not sent")
    assert wire._HANDED == {}  # what a failed submission handed out is dropped


def test_a_payload_travels_compressed_in_the_task_names_no_module_and_is_unpacked_once():
    import warnings

    payload = _payload("x * 2")
    with warnings.catch_warnings():  # IPython's filter for the notebook's __main__ is in every kernel
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
        from ipydistribute.core import item_output

        payload.warning_filters = item_output.notebook_filters()
    assert b"__main__" in payload.pack()
    buffers: list[pickle.PickleBuffer] = []
    task = pickle.dumps(("task", payload), protocol=5, buffer_callback=buffers.append)
    # Dask re-pickles with cloudpickle any task whose pickle holds the bytes __main__, and
    # measures every buffer beside a pickle for compression
    assert b"__main__" not in task and not buffers and len(task) < len(payload.pack())
    first = pickle.loads(task)[1]
    again = pickle.loads(task)[1]
    assert first is again and first is not payload
    assert first == payload and first.warning_filters == payload.warning_filters
    other = _payload("x * 3")
    other.token = payload.token  # the same token with other contents is another payload
    assert pickle.loads(pickle.dumps(other, protocol=5)).cell.source == "x * 3"
    large = _payload("len(big)")
    large.captured = {"big": bytes(CACHED_PAYLOAD_BYTES + 1)}  # scattered once: not kept twice
    buffers = []
    copies = [pickle.loads(pickle.dumps(large, protocol=5, buffer_callback=buffers.append), buffers=buffers)
              for _ in range(2)]
    assert len(buffers) == 2 and buffers[0].raw().nbytes > CACHED_PAYLOAD_BYTES  # one buffer, not compressed
    assert copies[0] is not copies[1] and "_blob" not in vars(copies[0])
    assert copies[0].captured == large.captured


def test_results_and_partials_round_trip_and_report_their_size():
    failure = ItemFailure(1, "1", "w", "ValueError", "bad")
    result = pickle.loads(pickle.dumps(BatchResult(4, [b"x" * 1000, None], [failure], 0.5, "w")))
    assert (result.start, len(result), result.failures[0].message) == (4, 2, "bad")
    assert sizeof(result) >= 1000  # Dask's memory accounting sees the values inside
    empty = pickle.loads(pickle.dumps(Partial(None, 0, [], 0, 0.0)))
    full = pickle.loads(pickle.dumps(Partial(0, 3, [], 0, 0.1)))
    assert (empty.count, full.value, full.count) == (0, 0, 3)  # a 0 value is kept, not "nothing"


def test_task_keys_are_read_back_as_they_were_built():
    token = new_token()
    key = task_key("cell7", "reduce2", token, 5)
    assert parse_key(key) == (token, f"cell7-reduce2-{token}", "reduce2", 5)
    assert parse_key(("cell7-reduce2", 5)) is None and parse_key(key[0]) is None


class _List(list):  # type: ignore[type-arg]
    pass


def _same(a: object, b: object) -> bool:
    """The same type and value (NaN counts as equal to NaN; 0.0 and -0.0 differ)."""
    return type(a) is type(b) and repr(a) == repr(b)


@pytest.mark.parametrize("items, code", [
    ([i * 7919 % 2**31 - 2**30 for i in range(5_000)] + [-2**31, 2**31 - 1, 0, -1], "i"),
    ([i / 7 for i in range(5_000)] + [float("nan"), float("inf"), -float("inf"), -0.0, 5e-324], "d"),
    (tuple(range(1_000)), "i"),
    (_List(range(1_000)), "i"),  # the items are what travel, not their list
])
def test_plain_numbers_travel_as_machine_numbers_and_arrive_the_same(items, code):
    buffers: list[pickle.PickleBuffer] = []
    copy = pickle.loads(pickle.dumps(Batch(4, items), protocol=5, buffer_callback=buffers.append), buffers=buffers)
    assert copy._numbers == code and len(copy) == len(items)
    arrived = copy.items
    assert all(_same(a, b) for a, b in zip(arrived, items, strict=True))
    assert _same(arrived[-1], items[-1]) and all(_same(a, b) for a, b in zip(arrived[10:20], items[10:20]))


class _Int(int):
    pass


class _Float(float):
    pass


@pytest.mark.parametrize("items", [
    [True, False] * 600,  # bool is an int: an array would make them 1 and 0
    list(range(1_000)) + [True],
    list(range(1_000)) + [2**31],  # beyond 32 bits
    list(range(1_000)) + [-2**31 - 1],
    [2**40 + i for i in range(1_000)],
    list(range(1_000)) + [_Int(5)],
    [float(i) for i in range(1_000)] + [_Float(0.5)],
    list(range(1_000)) + [0.5],  # ints and floats mixed
    [0.5] + list(range(1_000)) + [0.5],
    list(range(500)) + ["", ()] + list(range(500)),  # 5 bytes each in marshal, as an int is
    [np.int64(i) for i in range(1_000)],
    list(range(100)),  # too short to be worth it
])
def test_lists_an_array_would_change_keep_their_pickle(items):
    copy = pickle.loads(pickle.dumps(Batch(0, items), protocol=5))
    assert copy._numbers is None
    assert all(_same(a, b) for a, b in zip(copy.items, items, strict=True))


def test_a_batch_of_machine_numbers_runs_as_its_items_would():
    items = list(range(-600, 600))
    copy = pickle.loads(pickle.dumps(Batch(0, items), protocol=5))
    result = run_batch(copy, _payload("f'{type(x).__name__}:{x * x}'"))
    assert isinstance(result, BatchResult) and result.values == [f"int:{x * x}" for x in items]
    failed = run_batch(pickle.loads(pickle.dumps(Batch(0, items), protocol=5)), _payload("1 // x", on_error="collect"))
    assert isinstance(failed, BatchResult)
    failure = failed.values[600]
    assert isinstance(failure, ItemFailure) and (failure.index, failure.item) == (600, "0")


# --- the batch loop and its output capture --------------------------------------------------

def test_run_batch_gives_the_values_in_order():
    result = run_batch(Batch(3, [1, 2, 3]), _payload("y = x * 10\ny + 1"))
    assert isinstance(result, BatchResult) and (result.start, result.values) == (3, [11, 21, 31])


def test_run_batch_collects_failures_in_place_with_their_index():
    result = run_batch(Batch(0, [1, 0, 2]), _payload("10 // x", on_error="collect"))
    assert isinstance(result, BatchResult)
    assert result.values[0] == 10 and result.values[2] == 5
    failure = result.values[1]
    assert isinstance(failure, ItemFailure) and failure.index == 1 and failure.exc_type == "ZeroDivisionError"


@pytest.mark.parametrize("items", [list(range(-5_000, 5_000)), Batch(0, list(range(-5_000, 5_000)))])
def test_a_failure_in_the_one_comprehension_of_a_batch_names_its_item_and_the_cells_line(items):
    # Runs that end at their first failure make a chunk's values in one comprehension: the
    # failing item is found from the iterator's position, for lists and for machine numbers.
    batch = pickle.loads(pickle.dumps(items, protocol=5)) if isinstance(items, Batch) else Batch(0, items)
    assert type(batch.items).__name__ == ("array" if isinstance(items, Batch) else "list")
    payload = _payload("10 // (x - 1234)", reduce=sum)
    assert task._prepare(payload).values_of is not None
    with pytest.raises(ItemError) as caught:
        run_batch(batch, payload)
    failure = caught.value.failure
    assert (failure.index, failure.item) == (6_234, "1234")
    rendered = "\n".join(failure.render())
    assert "line 1" in rendered and "10 // (x - 1234)" in rendered and "ZeroDivisionError" in rendered
    assert "listcomp" not in rendered and "__ipydistribute" not in rendered and rendered.count("line 1") == 1
    assert task._prepare(_payload("x", on_error="skip")).values_of is None  # values one by one, as before


@pytest.mark.parametrize("items", [[5, 6, 7], array("i", [5, 6, 7])])
def test_the_cursor_reads_an_iterators_position_before_during_and_after_the_items(items):
    cursor = task._Cursor([])
    cursor.restart(10)
    iterator = iter(items)
    cursor.follow(iterator, len(items))
    assert cursor.offset() == 9  # nothing read yet
    seen = []
    for _ in iterator:
        seen.append(cursor.offset())
    assert seen == [10, 11, 12] and cursor.offset() == 12  # exhausted: a stop then names the last one


def test_run_batch_reduces_a_batch_when_the_run_has_a_reducer():
    partial = run_batch(Batch(0, list(range(10))), _payload("x * x", reduce=sum))
    assert isinstance(partial, Partial) and (partial.value, partial.count) == (sum(i * i for i in range(10)), 10)


def test_prints_of_the_items_are_captured_labelled_and_capped(capfd):
    payload = _payload("print('item', x)\nprint('z' * 100_000)\nx", topic="ipydistribute-output")
    result = run_batch(Batch(0, [7, 8]), payload)
    assert isinstance(result, BatchResult) and result.values == [7, 8]
    out, err = capfd.readouterr()
    assert "item 7" in out and "item 8" in out  # outside a task the events go to the process's stdout
    assert out.count("z") < 2 * payload.output_limit  # each item's output is capped ...
    assert "more characters of output dropped" in err  # ... and says so


# --- the pictures -----------------------------------------------------------------------------

def _snapshot() -> Snapshot:
    token = "0badf00d"
    counts = {"released": 0, "waiting": 0, "queued": 0, "processing": 1, "memory": 3, "erred": 0}
    groups = [
        GroupSnapshot(f"fast-map-{token}", "map", counts, [], 2.0, 1.0, 3.0, "mmmp", None),
        GroupSnapshot(f"fast-reduce1-{token}", "reduce1", {**counts, "processing": 0, "memory": 0, "waiting": 2},
                      [f"fast-map-{token}"], 0.0, 0.0, 0.0, "ww",
                      {0: [(f"fast-map-{token}", 0), (f"fast-map-{token}", 1)],
                       1: [(f"fast-map-{token}", 2), (f"fast-map-{token}", 3)]}),
    ]
    info = {"name": "simgpu-0", "nthreads": 1, "memory_limit": 2**31, "resources": {"GPU": 1},
            "metrics": {"cpu": 50.0, "memory": 2**20, "task_counts": {"executing": 1}},
            "ipydistribute": {"simulated_gpu": True, "pid": 1}}
    bars = [Bar(f"fast-map-{token}", i, i % 2, 1.0 + i, 1.5 + i, False) for i in range(3)]
    return Snapshot(4.0, groups, [worker_row("tcp://127.0.0.1:1", info)], bars, [("w", 0), ("w", 1)],
                    2.0, 1.0, 3.5, 6)


def test_the_graph_draws_each_task_and_joins_a_reduction_to_its_inputs():
    graph = layout(_snapshot())
    assert graph.per_task and graph.columns == 2 and len(graph.nodes) == 6
    states = [n.state for n in graph.nodes]
    assert states.count("memory") == 3 and states.count("processing") == 1 and states.count("waiting") == 2
    reduce_nodes = [n for n in graph.nodes if n.x == 1.0]
    assert len(reduce_nodes) == 2 and len(graph.edges) == 4
    assert all(x1 == 1.0 and x0 == 0.0 for x0, _, x1, _ in graph.edges)


def test_the_static_picture_is_a_png_inside_html_that_names_the_workers():
    from ipydistribute.core.run import Progress

    snapshot = _snapshot()
    png = run_png(snapshot, layout(snapshot), snapshot.new_bars, 3.5)
    assert png.startswith(b"\x89PNG") and len(png) < 500_000
    progress = Progress("fast", "0badf00d", "running", 8, 3, 6, 3, 0, 2.0)
    assert pace(progress) == (1.5, pytest.approx(5 / 1.5))
    html = run_html(figures(progress, snapshot, 2), snapshot, png, None, None)
    assert "data:image/png;base64," in html and "simgpu-0" in html
    assert gpu_text(snapshot.workers[0]) == "simulated GPU: no device, no metrics" and "simulated GPU" in html


def test_dasks_own_random_draws_leave_the_users_state_and_keep_its_classes():
    import random

    import distributed.worker_state_machine as state_machine

    from ipydistribute.core import seeding

    seeding.isolate_dask_random()  # what a run's first task does on a worker (here: this process)
    assert state_machine.random.Random is random.Random  # Dask still makes generators with it
    random.seed(7)
    expected = random.random()
    random.seed(7)
    state_machine.random.random()  # a draw of Dask's ...
    assert random.random() == expected  # ... is not taken from the user's sequence
