"""The scheduler-side monitor: which keys are a run's, and what a snapshot carries."""

from __future__ import annotations

from ipydistribute.core import api
from ipydistribute.core.monitor import RunMonitor, ensure_plugin, in_process_scheduler, parse_key


def test_parse_key_reads_run_keys_and_ignores_others():
    assert parse_key(("cell7-map-1a2b3c4d", 3)) == ("1a2b3c4d", "cell7-map-1a2b3c4d", "map", 3)
    assert parse_key(("my-cell-reduce2-00ff00ff", 0))[2] == "reduce2"
    assert parse_key("cell7-map-1a2b3c4d") is None
    assert parse_key(("x-map-nothex12", 0)) is None
    assert parse_key(("cell7-map-1a2b3c4d", "0")) is None


def test_snapshot_counts_one_run_and_its_workers(client):
    assert ensure_plugin(client) is None  # as %%distribute does before the first task
    run = api.distribute(abs, range(30), batch=1, wait=False, name="snap")
    monitor = RunMonitor(client, run.token, list(run.workers))
    run.result()
    snapshot = monitor.poll(since=0, limit=1000)
    (group,) = snapshot.groups
    assert group.role == "map" and group.counts["memory"] == group.total == 30
    assert group.states == "m" * 30
    assert len(snapshot.new_bars) == 30 and {b.group for b in snapshot.new_bars} == {group.name}
    assert {w.name for w in snapshot.workers} == {"cpu-0", "cpu-1", "simgpu-0"}
    monitor.forget()
    assert monitor.poll().groups == []  # forgotten on the scheduler


def test_the_embedded_scheduler_is_asked_in_process_and_answers_as_over_tcp(client):
    """The embedded cluster's scheduler runs in this process: the monitor asks it on its own
    event loop, and gets what a client of a remote scheduler gets through run_on_scheduler."""
    from distributed import Client

    assert ensure_plugin(client) is None
    assert in_process_scheduler(client) is not None
    run = api.distribute(abs, range(12), batch=1, wait=False, name="inproc")
    run.result()
    local = RunMonitor(client, run.token, list(run.workers)).poll(since=0, limit=1000)
    with Client(client.scheduler.address, set_as_default=False) as remote_client:  # owns no cluster
        assert in_process_scheduler(remote_client) is None
        remote = RunMonitor(remote_client, run.token, list(run.workers)).poll(since=0, limit=1000)
    assert local.unavailable is None and remote.unavailable is None
    assert [(g.name, g.counts, g.states) for g in local.groups] == [(g.name, g.counts, g.states) for g in remote.groups]
    assert local.new_bars == remote.new_bars and len(local.new_bars) == 12
    assert {w.name for w in local.workers} == {w.name for w in remote.workers}
