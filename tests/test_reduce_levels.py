"""How many reduce tasks a reduction of small partials takes: one for a few leaves (each tree
level is a round trip after the last leaf), a two-level tree for many."""

from __future__ import annotations

import ipydistribute
from ipydistribute.core.mapping import ONE_TASK_LEAVES


def _reduce_tasks(run) -> int:
    return len(run.ledger.entries("reduce"))


def test_a_few_small_partials_take_one_reduce_task(client):
    leaves = ONE_TASK_LEAVES - 2
    run = ipydistribute.distribute(abs, range(leaves), batch=1, reduce=sum, wait=False, name="fewleaves")
    assert run.result() == sum(range(leaves))
    assert _reduce_tasks(run) == 1


def test_more_leaves_than_one_task_takes_keep_a_tree(client):
    leaves = ONE_TASK_LEAVES + 20
    run = ipydistribute.distribute(abs, range(leaves), batch=1, reduce=sum, wait=False, name="manyleaves")
    assert run.result() == sum(range(leaves))
    assert _reduce_tasks(run) > 1
