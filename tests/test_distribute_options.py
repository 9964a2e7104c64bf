"""Options of %%distribute on a real cluster: output, --keep, resources, --nowait, retries, memory."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from waiting import wait_until

from ipydistribute.core import identity
from ipydistribute.core.kept import KeptResults
from ipydistribute.core.run import Run


def test_print_reaches_the_notebook_labelled_with_item_and_worker(ip, capsys):
    ip.run_cell_magic("distribute", "x in range(3) --batch 1", "print('hello from', x)\nx")
    out = capsys.readouterr().out
    for x in range(3):
        line = next(line for line in out.splitlines() if line.endswith(f"hello from {x}"))
        assert line.startswith(f"[item {x} @ 127.0.0.1:")


def test_print_arrives_while_the_run_is_still_going(ip, capsys):
    run = ip.run_cell_magic("distribute", "x in range(2) --batch 1 --nowait",
                            "import time\nprint('early', x)\ntime.sleep(4)\nx")
    assert isinstance(run, Run)
    seen = []

    def printed_early() -> bool:
        seen.append(capsys.readouterr().out)
        return "early" in "".join(seen)

    wait_until(printed_early, 30, "the first item's print")
    assert not run.done(), "the output should arrive before the items finish"
    assert run.result(timeout=60) == [0, 1]


def test_stderr_and_warnings_reach_the_notebook(ip, capsys, notebook_warnings):
    cell = "import warnings, sys\nwarnings.warn('careful now')\nprint('oops', file=sys.stderr)\nx"
    ip.run_cell_magic("distribute", "x in range(1)", cell)
    err = capsys.readouterr().err
    assert "careful now" in err and "oops" in err


def test_long_output_is_truncated_with_a_count(ip, capsys):
    ip.run_cell_magic("distribute", "x in range(1)", "print('y' * 300_000)\nx")
    captured = capsys.readouterr()
    assert len(captured.out) < 250_000
    assert "more characters of output dropped" in captured.err


def test_keep_chains_two_cells_without_passing_through_the_kernel(ip, client):
    kept = ip.run_cell_magic("distribute", "x in range(30) --keep --batch 5", "x * 10")
    assert isinstance(kept, KeptResults) and len(kept) == 30
    assert all(f.status == "finished" for f in kept.futures)
    ip.user_ns["kept"] = kept
    cell = "import os\n(v + 1, os.environ.get('IPYDISTRIBUTE_SIMULATED_GPU'))"
    second = ip.run_cell_magic("distribute", "v in kept --gpu", cell)
    assert [v for v, _ in second] == [x * 10 + 1 for x in range(30)]
    assert {flag for _, flag in second} == {"1"}
    assert kept.gather() == [x * 10 for x in range(30)]


def test_gpu_tasks_run_only_on_workers_with_the_resource(ip, client):
    result = ip.run_cell_magic("distribute", "x in range(12) --gpu --batch 1",
                               "from distributed import get_worker\nget_worker().name")
    assert set(result) == {"simgpu-0"}
    cpu = ip.run_cell_magic("distribute", "x in range(12) --batch 1 --workers cpu-0",
                            "from distributed import get_worker\nget_worker().name")
    assert set(cpu) == {"cpu-0"}


def test_custom_resources_and_all_with_gpu(ip):
    names = ip.run_cell_magic("distribute", "x in range(4) --resources GPU=1 --batch 1",
                              "from distributed import get_worker\nget_worker().name")
    assert set(names) == {"simgpu-0"}


def test_nowait_returns_a_handle_and_out_is_set_when_done(ip):
    run = ip.run_cell_magic("distribute", "x in range(10) --nowait --out later", "x + 1")
    assert isinstance(run, Run)
    assert run.result(timeout=60) == list(range(1, 11))
    wait_until(lambda: "later" in ip.user_ns, 30, "--out set when the run finished")
    assert ip.user_ns["later"] == list(range(1, 11))


def test_nowait_cancel_removes_the_tasks(ip, client):
    run = ip.run_cell_magic("distribute", "x in range(40) --nowait --batch 1", "import time\ntime.sleep(0.5)\nx")
    wait_until(lambda: run.progress().items_done >= 1, 60, "the first item of the run")
    run.cancel()
    assert run.wait(30)
    assert run.state == "cancelled"
    wait_until(lambda: not client.run_on_scheduler(lambda dask_scheduler, token=run.token: [
        k for k in dask_scheduler.tasks if isinstance(k, tuple) and token in str(k[0])]),
        30, "the run's tasks gone from the scheduler")
    assert ip.run_cell_magic("distribute", "x in range(3)", "x") == [0, 1, 2]


def test_retries_rerun_a_failing_task(ip, tmp_path):
    marker = tmp_path / "attempts"
    marker.mkdir()
    ip.user_ns["marker_dir"] = str(marker)
    cell = ("import os, uuid\nopen(os.path.join(marker_dir, uuid.uuid4().hex), 'w').close()\n"
            "if len(os.listdir(marker_dir)) < 3:\n    raise RuntimeError('flaky')\n'ok'")
    assert ip.run_cell_magic("distribute", "x in range(1) --retries 3", cell) == ["ok"]
    assert len(os.listdir(marker)) == 3


def test_large_capture_is_scattered_once_not_shipped_per_task(ip, client):
    ip.user_ns["big"] = np.arange(2_000_000, dtype=np.float64)  # 16 MB
    for log in client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear()).values():
        assert log is None
    run = ip.run_cell_magic("distribute", "x in range(60) --batch 1 --nowait", "float(big[x])")
    seen_payload = set()
    while not run.done():
        seen_payload |= {k for k in client.who_has() if str(k).startswith("Payload-")}
        time.sleep(0.05)
    assert run.result() == [float(x) for x in range(60)]
    assert seen_payload, "the payload should be a data key on the cluster (scattered)"
    transfers = client.run(lambda dask_worker: [
        log["total"] for log in dask_worker.transfer_incoming_log
        if any(str(k).startswith("Payload-") for k in log["keys"])])
    workers = len(identity.workers(client))
    assert sum(len(t) for t in transfers.values()) <= workers - 1


@pytest.mark.slow
def test_million_item_generator_is_streamed_with_bounded_memory(ip):
    holder: dict = {}
    outstanding = []

    def items(n):
        for i in range(n):
            run = holder.get("run")
            if run is not None and i % 1000 == 0:
                outstanding.append(i - run.progress().items_done)
            yield i

    ip.user_ns["items"] = items
    run = ip.run_cell_magic("distribute", "x in items(1_000_000) --reduce sum --nowait", "x")
    holder["run"] = run
    assert run.result(timeout=300) == sum(range(1_000_000))
    batch = run.batch_size
    assert batch is not None and batch < 1_000_000 // 4
    assert max(outstanding) <= (run.max_in_flight + 1) * batch


@pytest.mark.parametrize("reduce", [None, sum], ids=["map", "reduce"])
def test_auto_batching_times_its_probe_without_an_event_topic(client, reduce):
    from ipydistribute.core.keys import new_token
    from ipydistribute.core.options import RunOptions
    from ipydistribute.core.run import make_payload, start_run

    options = RunOptions(reduce=reduce)
    payload = make_payload("notopic", new_token(), func=abs, options=options, topic=None)
    items = list(range(-3000, 3000))
    run = start_run(client, payload, items, options)
    expected = sum(abs(x) for x in items) if reduce else [abs(x) for x in items]
    assert run.result(timeout=60) == expected
    assert run.batch_size is not None and run.batch_size > 1  # sized from the probe's timing


def test_probe_timings_come_as_events_ahead_of_the_results(ip, client):
    from ipydistribute.core.mapping import MapSubmission

    seen = []
    original = MapSubmission._probe_timings

    def spy(self, futures, batches):
        seen.append([self.driver.probe_timing(b.start) for b in batches])
        return original(self, futures, batches)

    MapSubmission._probe_timings = spy
    try:
        assert ip.run_cell_magic("distribute", "x in range(10_000) --reduce sum --view none", "x * x") == sum(
            x * x for x in range(10_000))
    finally:
        MapSubmission._probe_timings = original
    assert len(seen) == 1 and seen[0] and all(t is not None and t[1] >= 1 for t in seen[0])
