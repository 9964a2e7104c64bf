"""How many reduce tasks a reduction of small partials takes: one for a few leaves (each tree
level is a round trip after the last leaf), a wide tree for many (each reduce task costs a
dispatch and a fetch), narrower when the partials are large enough to crowd one task."""

from __future__ import annotations

import math

import ipydistribute
from ipydistribute.core import mapping, plan
from ipydistribute.core.mapping import ONE_TASK_LEAVES


def _reduce_tasks(run) -> int:
    return len(run.ledger.entries("reduce"))


def test_a_few_small_partials_take_one_reduce_task(client):
    leaves = ONE_TASK_LEAVES - 2
    run = ipydistribute.distribute(abs, range(leaves), batch=1, reduce=sum, wait=False, name="fewleaves")
    assert run.result() == sum(range(leaves))
    assert _reduce_tasks(run) == 1


def test_many_small_partials_take_a_wide_tree(client):
    leaves = 600
    fan_in = plan.wide_fan_in(leaves)
    assert fan_in < leaves
    run = ipydistribute.distribute(abs, range(leaves), batch=1, reduce=sum, wait=False, name="manyleaves")
    assert run.result() == sum(range(leaves))
    # One level of ceil(600 / fan-in) tasks, then one task over their partials; the square-root
    # fan-in of plan.fan_in_for would take 25 + 1.
    assert _reduce_tasks(run) == math.ceil(leaves / fan_in) + 1


def test_partials_that_crowd_a_task_narrow_the_tree(client, monkeypatch):
    # 40 partials of 50 kB: one task by the leaf count, but at most about 10 fit the budget.
    monkeypatch.setattr(mapping, "REDUCE_TASK_BYTES", 500_000)
    run = ipydistribute.distribute(lambda i: bytes(50_000), range(40), batch=1, reduce=max, wait=False,
                                   name="crowded")
    assert run.result() == bytes(50_000)
    assert _reduce_tasks(run) > 1
