"""The pure planning parts: batch sizes, batches, and the order-keeping tree reduction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipydistribute.core import plan


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
    # tiny items: long tasks, but at least 4 per thread
    assert plan.auto_batch_size(10_000, 2, 1e-7, 0.2, 100_000) == 1_250
    # expensive items: one per task
    assert plan.auto_batch_size(100, 2, 1.0, 0.2, 100_000) == 1
    # 20 microseconds: about 0.2 s per task
    assert plan.auto_batch_size(200_000, 2, 20e-6, 0.2, 100_000) == 10_000
    # a generator: bounded by max_batch
    assert plan.auto_batch_size(None, 2, 1e-9, 0.2, 50_000) == 50_000


def test_batcher_cuts_consecutive_batches_of_changing_size():
    batcher = plan.Batcher(iter(range(10)))
    assert batcher.remaining is None
    first = batcher.take(3)
    second = batcher.take(5)
    third = batcher.take(5)
    assert (first.start, first.items) == (0, [0, 1, 2])
    assert (second.start, second.items) == (3, [3, 4, 5, 6, 7])
    assert (third.start, third.items) == (8, [8, 9])
    assert batcher.take(1) is None


def test_sized_length_does_not_consume_generators():
    gen = (i for i in range(3))
    assert plan.sized_length(gen) is None
    assert list(gen) == [0, 1, 2]
    assert plan.sized_length(range(7)) == 7


def test_fan_in_must_combine_something():
    with pytest.raises(ValueError):
        plan.TreeReducer(1)
