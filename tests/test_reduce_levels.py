"""How many reduce tasks a reduction of small partials takes: one for a few leaves (each tree
level is a round trip after the last leaf), a wide tree for many (each reduce task costs a
dispatch and a fetch), narrower when the partials are large enough to crowd one task."""

from __future__ import annotations

import math

import pytest

import ipydistribute
from ipydistribute.core import mapping, plan
from ipydistribute.core.errors import CellError
from ipydistribute.core.mapping import ONE_TASK_LEAVES


def _reduce_tasks(run) -> int:
    return len(run.ledger.entries("reduce"))


def test_a_few_small_partials_take_one_reduce_task(client):
    leaves = ONE_TASK_LEAVES - 2
    run = ipydistribute.distribute(abs, range(leaves), batch=1, reduce=_python_sum, wait=False, name="fewleaves")
    assert run.result() == sum(range(leaves))
    assert _reduce_tasks(run) == 1


def _python_sum(values):
    return sum(values)


def test_a_builtin_folds_a_few_small_partials_at_home(client):
    # Auto batching cuts 20,000 items into a few batches; their sums are small, so the kernel
    # folds them with the builtin itself; a reducer written in Python keeps its reduce task,
    # where a stop reaches it.
    run = ipydistribute.distribute(abs, range(-10_000, 10_000), reduce=sum, wait=False, name="athome")
    assert run.result() == sum(abs(x) for x in range(-10_000, 10_000))
    assert len(run.ledger.entries("map")) <= ONE_TASK_LEAVES and _reduce_tasks(run) == 0
    run = ipydistribute.distribute(abs, range(-10_000, 10_000), reduce=_python_sum, wait=False, name="oncluster")
    assert run.result() == sum(abs(x) for x in range(-10_000, 10_000))
    assert _reduce_tasks(run) == 1


@pytest.fixture
def gathered(monkeypatch):
    """The number of tasks of each gather of results the runs make (a list that grows)."""
    from ipydistribute.core import collect

    counts: list[int] = []
    gather = collect.Collector._gather

    def counting(self, futures):
        counts.append(len(futures))
        return gather(self, futures)

    monkeypatch.setattr(collect.Collector, "_gather", counting)
    return counts


def test_small_partials_folded_at_home_come_with_their_tasks_ends_not_by_a_gather(client, monkeypatch, gathered):
    run = ipydistribute.distribute(abs, range(-10_000, 10_000), reduce=sum, wait=False, name="sentahead")
    assert run.result() == sum(abs(x) for x in range(-10_000, 10_000))
    assert _reduce_tasks(run) == 0 and gathered == []
    # Partials too large to send ahead are gathered (each batch's is a list of its values here).
    monkeypatch.setattr(mapping.MapSubmission, "_folds_at_home", lambda self: True)
    run = ipydistribute.distribute(lambda x: [x] * 30, range(20_000), reduce=_concatenated, wait=False,
                                   name="bigpartials")
    assert run.result() == [x for x in range(20_000) for _ in range(30)]
    assert gathered and gathered[-1] == len(run.ledger.entries("map"))


def _concatenated(lists):
    out = []
    for values in lists:
        out.extend(values)
    return out


def test_the_small_values_of_a_run_of_few_tasks_come_with_their_tasks_ends(client, gathered):
    assert ipydistribute.distribute(abs, range(-50, 50)) == [abs(x) for x in range(-50, 50)]
    assert ipydistribute.distribute(abs, range(-50, 50), batch=10) == [abs(x) for x in range(-50, 50)]
    assert gathered == []
    # Values too large to send ahead are fetched as before.
    assert ipydistribute.distribute(lambda x: bytes(20_000), range(8), batch=2) == [bytes(20_000)] * 8
    assert sum(gathered) == 4


def test_a_reducer_failing_at_home_fails_the_cell_like_a_reduce_task(client, monkeypatch):
    # Batches 0-1 make ints and 2-3 strings: each batch folds, the last fold mixes them.
    monkeypatch.setattr(mapping.MapSubmission, "_folds_at_home", lambda self: True)
    run = ipydistribute.distribute(lambda x: x if x < 10_000 else str(x), range(20_000), batch=5_000,
                                   reduce=max, wait=False, name="homefails")
    with pytest.raises(CellError, match="the reducer <built-in function max>") as caught:
        run.result()
    failure = caught.value.failures[0]
    assert (failure.exc_type, failure.worker, _reduce_tasks(run)) == ("TypeError", "the kernel", 0)


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


def test_leaves_handed_to_their_reduce_task_are_followed_on_the_scheduler_not_through_reports(client):
    import time

    from ipydistribute.core.keys import parse_key

    # The embedded scheduler runs in this process: once a reduce task consumes the leaves, the
    # run lets go of their futures (no report per leaf reaches the client) and asks the scheduler
    # which are done, so the progress still moves before the one reduce task ends.
    handlers = client._stream_handlers
    reported: list[object] = []
    heard = handlers["key-in-memory"]

    def counting(**msg):
        reported.append(msg.get("key"))
        return heard(**msg)

    handlers["key-in-memory"] = counting
    try:
        run = ipydistribute.distribute(lambda s: time.sleep(s) or 1, [0.05] * 40, batch=1, reduce=sum,
                                       wait=False, name="handedover")
        seen = []
        while not run.done():
            seen.append(run.progress().items_done)
            time.sleep(0.02)
        assert run.result() == 40
    finally:
        handlers["key-in-memory"] = heard
    assert len({done for done in seen if 0 < done < 40}) >= 3, seen  # moved on several times
    leaves_reported = [key for key in reported
                       if (parsed := parse_key(key)) and parsed[0] == run.token and parsed[2] == "map"]
    assert len(leaves_reported) < 20, leaves_reported  # the few before the partials' size was known
    assert run.progress().items_done == 40
