"""Workers busy and where the time went, from Dask's span of a run; one hint when busy is low."""

from __future__ import annotations

import pytest
from waiting import wait_until

from ipydistribute.core import api, identity
from ipydistribute.core.hints import hint, straggler_share
from ipydistribute.core.monitor import Bar
from ipydistribute.core.timing import RunTiming, run_timing


def spin(seconds):
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return seconds


def bars(*lanes):
    """Bars from (lane, start, stop) triples."""
    return [Bar("g", i, lane, start, stop, False) for i, (lane, start, stop) in enumerate(lanes)]


def test_a_run_is_accounted_by_its_dask_span(client):
    run = api.distribute(spin, [0.05] * 16, batch=1, wait=False, name="timed")
    run.result()
    timing = run_timing(client, run.span_id)
    assert timing is not None
    assert 0 < timing.busy <= 1
    assert timing.wall > 0 and timing.thread_seconds >= timing.wall  # at least one thread throughout
    assert timing.shares["running"] > 0
    assert "running tasks" in timing.breakdown()
    total = sum(timing.shares.values())
    assert total == pytest.approx(timing.thread_seconds, rel=0.25)  # the shares cover the threads' time


def test_busy_is_capped_and_none_without_threads():
    assert RunTiming(1.0, 2.0, {"running": 3.0}).busy == 1.0
    assert RunTiming(1.0, 0.0, {"running": 1.0}).busy is None


def test_tiny_items_in_one_item_tasks_get_the_batch_hint():
    timing = RunTiming(2.0, 4.0, {"running": 0.2, "idle": 3.8})
    text = hint(timing, [], items=10_000, tasks=10_000, threads=2, batch=1)
    assert text == "items of 20 us in tasks of 20 us: use --batch auto"


def test_a_tiny_run_is_told_a_plain_loop_is_faster():
    timing = RunTiming(0.16, 0.32, {"running": 0.0035, "waiting": 0.28})
    text = hint(timing, [], items=5, tasks=5, threads=2, batch=None)
    assert text is not None and "plain loop" in text


def test_a_straggler_is_named_with_its_share_of_the_run():
    stream = bars((0, 0.0, 1.0), (1, 0.0, 1.0), (0, 1.0, 2.0), (1, 1.0, 5.0))
    assert straggler_share(stream) == pytest.approx(0.6)
    timing = RunTiming(5.0, 10.0, {"running": 6.0, "idle": 4.0})
    text = hint(timing, stream, items=4, tasks=4, threads=2, batch=1)
    assert text is not None and "one straggler held the last 60% of the run" in text


def test_busy_runs_get_no_hint_and_few_tasks_are_named():
    busy = RunTiming(1.0, 2.0, {"running": 1.8})
    assert hint(busy, [], items=10, tasks=10, threads=2, batch=1) is None
    idle = RunTiming(1.0, 8.0, {"running": 1.0, "idle": 7.0})
    assert "1 task(s) for 8 threads" in (hint(idle, [], items=1, tasks=1, threads=8, batch=None) or "")


@pytest.mark.slow
def test_workers_added_during_a_run_are_counted_while_present(client):
    import ipydistribute

    def workers() -> int:
        return len(identity.workers(client))

    before = workers()
    threads_at_start = sum(w["nthreads"] for w in identity.workers(client).values())
    run = api.distribute(spin, [0.25] * 80, batch=1, wait=False, name="grow")
    try:
        wait_until(lambda: run.progress().tasks_done >= 2, 60, "the run's first 2 tasks done")
        ipydistribute.scale(before + 2)
        run.result()
        timing = run_timing(client, run.span_id)
    finally:
        ipydistribute.scale(before)
        wait_until(lambda: workers() <= before, 60, f"the cluster back to {before} workers")
    assert timing is not None
    # More threads than at the start for part of the run, counted only while they were there.
    assert timing.wall * threads_at_start < timing.thread_seconds < timing.wall * (threads_at_start + 2)
    assert 0 < timing.busy <= 1
