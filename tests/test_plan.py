"""The pure planning parts: batch sizes, batches, and the order-keeping tree reduction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipydistribute.core import plan

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`


def fold(leaves: list[int], fan_in: int, grow_to: int | None = None) -> tuple[list[int], int]:
    """Run the tree with list concatenation as the reducer; returns the root and the task count."""
    tree = plan.TreeReducer(fan_in)
    tasks = 0

    def combine(groups):
        nonlocal tasks
        while groups:
            nodes = []
            for level, group in groups:
                if len(group) > 1:
                    tasks += 1
                    nodes.append((level, [x for part in group for x in part]))
                else:
                    nodes.append((level, group[0]))
            groups = [up for level, node in nodes for up in tree.add(node, level)]

    for i, leaf in enumerate(leaves):
        if grow_to is not None and i == 2:
            tree.fan_in = grow_to
        combine(tree.add([leaf]))
    while groups := tree.pending_groups():
        combine(groups)
    root = tree.root()
    return (root if root is not None else []), tasks


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.integers(2, 12), st.one_of(st.none(), st.integers(2, 40)))
def test_tree_keeps_item_order_and_covers_every_leaf(n, fan_in, grow_to):
    root, _ = fold(list(range(n)), fan_in, grow_to)
    assert root == list(range(n))


def test_square_root_fan_in_keeps_the_reduction_small():
    leaves = 10_000
    _, tasks = fold(list(range(leaves)), plan.fan_in_for(leaves, 8))
    assert tasks <= 102
    _, narrow = fold(list(range(leaves)), 8)
    assert narrow > 1_400


def test_auto_batch_size_balances_time_and_threads():
    # tiny items (1 ms of work in all): one task per thread, Dask's per-task cost would dominate
    assert plan.auto_batch_size(10_000, 2, 1e-7, 0.2, 100_000) == 5_000
    # a second of work: at least 4 tasks per thread
    assert plan.auto_batch_size(10_000_000, 2, 1e-7, 0.2, 10_000_000) == 1_250_000
    # expensive items: one per task, also just under the target (not two per task, 0.38 s)
    assert plan.auto_batch_size(100, 2, 1.0, 0.2, 100_000) == 1
    assert plan.auto_batch_size(14, 2, 0.19, 0.2, 100_000) == 1
    # 20 microseconds: about 0.2 s per task
    assert plan.auto_batch_size(200_000, 2, 20e-6, 0.2, 100_000) == 10_000
    # a generator: bounded by max_batch
    assert plan.auto_batch_size(None, 2, 1e-9, 0.2, 50_000) == 50_000


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 64), st.floats(1e-8, 10.0))
def test_auto_batches_are_even_and_never_leave_a_thread_idle(remaining, threads, per_item):
    size = plan.auto_batch_size(remaining, threads, per_item, 0.2, 1_000_000)
    tasks = -(-remaining // size)
    assert 1 <= size <= 1_000_000
    assert tasks >= min(threads, remaining)  # every thread gets work
    assert (size - 1) * per_item < 0.2  # about the target duration at most
    if remaining * per_item >= threads * plan.TASKS_PER_THREAD * plan.MIN_TASK_SECONDS * 2:
        assert size <= -(-remaining // (threads * plan.TASKS_PER_THREAD))  # enough tasks to even out


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**6), st.integers(1, 32), st.floats(1e-8, 1.0))
def test_tapered_sizes_cover_every_item_and_end_with_shorter_rounds(remaining, threads, per_item):
    size = plan.auto_batch_size(remaining, threads, per_item, 0.2, 1_000_000)
    sizes = plan.tapered_sizes(remaining, size, threads, per_item)
    assert sum(sizes) == remaining and min(sizes) >= 1
    assert max(sizes) <= size
    tail = threads * (size // 2 + size // 4)
    if (size // 4) * per_item >= plan.MIN_TASK_SECONDS and remaining >= tail + threads * size:
        assert sizes[-threads:] == [size // 4] * threads  # tapered: a round of halves, then quarters
        assert sizes[-2 * threads : -threads] == [size // 2] * threads
        assert len(sizes) % threads == 0
    else:
        assert max(sizes) - min(sizes) <= 1  # even batches


def test_tapering_applies_to_long_runs_only():
    assert plan.tapered_sizes(200_000, 10_000, 2, 20e-6)[-4:] == [5_000, 5_000, 2_500, 2_500]
    assert plan.tapered_sizes(1_000_000, 250_000, 2, 8e-8) == [250_000] * 4  # quarters would be 5 ms


def test_probe_runs_a_small_share_of_each_threads_items():
    assert plan.probe_size(None, 2) == 1
    assert plan.probe_size(10, 2) == 1
    assert plan.probe_size(1_000_000, 2) == plan.PROBE_MAX_ITEMS
    assert plan.probe_size(3_200, 2) == 100  # 1/16 of a thread's share


def test_batcher_cuts_consecutive_batches_of_changing_size():
    batcher = plan.Batcher(iter(range(10)))
    assert batcher.remaining is None
    first = batcher.take(3)
    second = batcher.take(5)
    third = batcher.take(5)
    assert (first.start, first.items) == (0, [0, 1, 2])
    assert first.count == 3
    assert (second.start, second.items) == (3, [3, 4, 5, 6, 7])
    assert (third.start, third.items) == (8, [8, 9])
    assert batcher.take(1) is None


def test_batcher_slices_lists_ranges_and_arrays_without_iterating():
    import numpy as np

    data = list(range(10))
    batch = plan.Batcher(data).take(4)
    assert batch.items == [0, 1, 2, 3] and batch.items is not data
    assert plan.Batcher(range(10**12)).take(3).items == range(3)  # a range stays a range
    array = np.arange(12).reshape(6, 2)
    rows = plan.Batcher(array).take(2).items
    assert isinstance(rows, np.ndarray) and rows.tolist() == [[0, 1], [2, 3]]


def test_batch_travels_as_one_buffer_and_unpacks_on_first_use():
    import pickle

    batch = plan.Batcher(list(range(1000))).take(600)
    copy = pickle.loads(pickle.dumps(batch, protocol=5))
    assert copy._items is None and copy.count == 600  # nothing unpickled until a worker needs it
    assert list(copy.items) == list(range(600)) and (copy.start, len(copy)) == (0, 600)
    large = plan.Batcher(list(range(100_000))).take(60_000)  # large enough to travel out of band
    buffers: list = []
    out_of_band = pickle.loads(pickle.dumps(large, protocol=5, buffer_callback=buffers.append), buffers=buffers)
    assert len(buffers) == 1 and list(out_of_band.items) == list(range(60_000))


def test_sized_length_does_not_consume_generators():
    gen = (i for i in range(3))
    assert plan.sized_length(gen) is None
    assert list(gen) == [0, 1, 2]
    assert plan.sized_length(range(7)) == 7


def test_fan_in_must_combine_something():
    with pytest.raises(ValueError):
        plan.TreeReducer(1)


def test_a_resumed_batcher_cuts_only_the_open_ranges_and_never_across_them():
    ranges = plan.open_ranges(20, [0, 1, 2, 7, 8, 19])
    assert ranges == [(3, 7), (9, 19)]
    batcher = plan.Batcher(list(range(100, 120)), ranges)
    assert batcher.remaining == 14
    batches = []
    while (batch := batcher.take(3)) is not None:
        batches.append((batch.start, list(batch.items)))
    assert batches == [(3, [103, 104, 105]), (6, [106]), (9, [109, 110, 111]), (12, [112, 113, 114]),
                       (15, [115, 116, 117]), (18, [118])]
    assert batcher.remaining == 0 and batcher.exhausted


def _cut(batcher: plan.Batcher, sizes: list[int]) -> list:
    """The batches of sizes ``sizes``, then of the last size until the input ends."""
    batches = []
    while (batch := batcher.take(sizes[min(len(batches), len(sizes) - 1)])) is not None:
        batches.append(batch)
    return batches


@pytest.mark.parametrize("ranges", [None, [(3, 700), (900, 2000), (2500, 3000)]])
def test_an_input_of_plain_numbers_packed_front_to_back_is_cut_into_views_of_it(ranges):
    import pickle

    data = [i * 37 - 50_000 for i in range(3000)]
    packed, plain = plan.Batcher(data, ranges), plan.Batcher(data, ranges)
    first = packed.take(100)  # taken before the packing, as the probe's batches are
    plain.take(100)
    assert packed.start_packing()
    sizes = [7, 700, 1, 5000, 300]
    cut, expected = _cut(packed, sizes), _cut(plain, sizes)
    assert [(b.start, b.count, b.first) for b in cut] == [(b.start, b.count, b.first) for b in expected]
    assert first._numbers is None and len(cut) > 3
    for batch, same in zip(cut, expected, strict=True):
        assert batch._numbers == "i" and batch._items is None  # a view of the packed input
        arrived = pickle.loads(pickle.dumps(batch, protocol=5))
        assert list(arrived.items) == list(same.items) and type(arrived.items[0]) is int


def test_packing_stops_at_the_first_piece_that_is_not_all_plain_numbers(monkeypatch):
    from ipydistribute.core import number_lists

    monkeypatch.setattr(number_lists, "_PIECE", 1000)
    data = list(range(3000))
    data[2500] = True  # a bool: the piece holding it cannot travel as numbers, those before can
    batcher = plan.Batcher(data)
    assert batcher.start_packing()  # the first and last items look right
    batches = [batcher.take(1000) for _ in range(3)]
    assert [b._items is None for b in batches] == [True, True, False]  # views, views, a slice as before
    assert batches[2].items[500] is True and batcher.left_to_pack == 0
    assert not plan.Batcher([2**40] * 1000).start_packing()  # its first items already fail


def test_nothing_open_means_nothing_to_cut():
    assert plan.open_ranges(3, [0, 1, 2]) == []
    assert plan.Batcher(range(3), []).take(5) is None
