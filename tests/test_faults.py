"""Real faults on a real cluster: workers SIGKILLed, a memory hog, random kills, a dead scheduler.

The cluster here is made of ``dask scheduler`` / ``dask worker`` processes that this module
starts (tests/dask_procs.py), each in its own process group, so the faults hit nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from dask_procs import Procs, kill_pid, wait_for_workers, worker_pids
from distributed import Client
from figures import record
from kernel_helpers import Kernel
from waiting import wait_until

from ipydistribute.core import cluster as cluster_mod
from ipydistribute.core.errors import RunLostError
from ipydistribute.core.run import Run

pytestmark = pytest.mark.slow

SLOW_CELL = "import time\ntime.sleep({seconds})\nx * x"


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Procs, Client]]:
    """A scheduler and two nanny-managed workers, w1 of 300 MiB and w2 of 400 MiB, for this module."""
    procs = Procs(tmp_path_factory.mktemp("faults"))
    try:
        procs.start_scheduler()
        procs.start_worker("w1", memory_limit="300MiB")
        procs.start_worker("w2", memory_limit="400MiB")
        client = Client(procs.address, set_as_default=False, timeout=60)
        try:
            wait_for_workers(client, 2)
            yield procs, client
        finally:
            client.close()
    finally:
        procs.close()


@pytest.fixture
def faulty(ip: Any, procs: tuple[Procs, Client]) -> Iterator[tuple[Any, Procs, Client]]:
    """The IPython shell with the test's own cluster as the current one (the session's is put back)."""
    p, client = procs
    previous = cluster_mod.chosen()
    cluster_mod.use(cluster_mod.ClusterHandle(client, None, "remote"))
    try:
        wait_for_workers(client, 2)
        yield ip, p, client
    finally:
        cluster_mod.use(previous)


def _owners(p: Procs) -> set[int]:
    return {proc.pid for proc in p._all}


def _run(ip: Any, line: str, cell: str) -> Run:
    run = ip.run_cell_magic("distribute", line + " --nowait --view none", cell)
    assert isinstance(run, Run)
    return run


def test_worker_killed_mid_run_the_result_is_still_complete(faulty):
    ip, p, client = faulty
    before = worker_pids(client)
    run = _run(ip, "x in range(30) --batch 1", SLOW_CELL.format(seconds=0.3))
    wait_until(lambda: run.progress().items_done >= 2, 60, "the first items of the run")
    assert not run.done()
    assert kill_pid(before["w1"], _owners(p))
    assert run.result(timeout=120) == [x * x for x in range(30)]
    wait_for_workers(client, 2)
    assert worker_pids(client)["w1"] != before["w1"], "the nanny should have started a new w1"


def test_chaos_kills_every_few_seconds_and_the_answer_is_right(faulty):
    ip, p, client = faulty
    line, cell = "x in range(40) --batch 1 --reduce sum", SLOW_CELL.format(seconds=0.25)
    started = time.monotonic()
    assert _run(ip, line, cell).result(timeout=120) == sum(x * x for x in range(40))
    alone = time.monotonic() - started

    run = _run(ip, line, cell)
    started = time.monotonic()
    kills = 0
    next_kill = started + 1.5
    while not run.done():
        # Kill a worker, let its nanny bring it back, wait two seconds, kill the other one; at most
        # three kills, so that a run slowed down by the kills cannot keep the test going for ever.
        if time.monotonic() >= next_kill and kills < 3:
            pids = worker_pids(client)
            if len(pids) == 2:
                victim = sorted(pids)[kills % 2]
                kills += kill_pid(pids[victim], _owners(p))
                next_kill = float("inf")
        if next_kill == float("inf") and len(worker_pids(client)) == 2:
            next_kill = time.monotonic() + 2
        time.sleep(0.1)
    assert run.result() == sum(x * x for x in range(40))
    chaos = time.monotonic() - started
    record("chaos", f"40 items x 0.25 s on 2 workers: {alone:.1f} s alone, {chaos:.1f} s with {kills} "
           f"worker kills (each 2 s after the last one came back) -> {chaos - alone:+.1f} s "
           f"({chaos / alone:.2f}x)")
    assert kills >= 1
    wait_for_workers(client, 2)


HOG = "import numpy as np, time\nif x == 2:\n    hog = np.ones(600 * 2**20 // 8)\n    time.sleep(20)\nx"


def test_memory_hog_error_names_the_item_not_a_bare_killed_worker(faulty):
    ip, p, client = faulty
    run = _run(ip, "x in range(4) --batch 1", HOG)
    with pytest.raises(RunLostError) as info:
        run.result(timeout=180)
    text = str(info.value)
    assert "item #2 (2)" in text and "memory" in text, text
    assert "KilledWorker" not in text and "\n" not in text
    wait_for_workers(client, 2)
    assert ip.run_cell_magic("distribute", "x in range(3) --view none", "x") == [0, 1, 2]


def test_only_worker_gone_with_no_retries_names_the_lost_items(faulty):
    ip, p, client = faulty
    p.start_worker("lonely", nanny=False)  # no nanny: once killed it stays dead
    wait_for_workers(client, 3)
    run = _run(ip, "x in range(10) --batch 1 --retries 0 --workers lonely", SLOW_CELL.format(seconds=0.5))
    wait_until(lambda: run.progress().items_done >= 1, 60, "the first item done on the lonely worker")
    p.kill_group(p.workers.pop("lonely"))
    try:
        with pytest.raises(RunLostError) as info:
            run.result(timeout=60)  # a no-hang bound: the loss is seen at once
    finally:
        run.cancel()
    text = str(info.value)
    assert "lonely" in text and "item #" in text, text


def test_scheduler_killed_the_cell_fails_clearly_and_a_new_cluster_works(tmp_path):
    procs = Procs(tmp_path)
    try:
        address = procs.start_scheduler()
        procs.start_worker("s1")
        with Kernel() as kernel:
            kernel.ok(f"%load_ext ipydistribute\n%cluster connect {address}\n"
                      "import ipydistribute\nipydistribute.get_client().wait_for_workers(1, timeout=60)",
                      timeout=120)
            msg_id = kernel.submit("%%distribute x in range(40) --batch 1 --view none\n"
                                   "print('started', x, flush=True)\n" + SLOW_CELL.format(seconds=0.5))
            kernel.wait_for_output(msg_id, "started", 3)  # the items run (and one has finished)
            procs.kill_scheduler()
            killed = time.monotonic()
            reply = kernel.collect(msg_id, timeout=90)  # no hang: bounded well above Dask's 30 s
            record("scheduler-kill", f"the cell failed {time.monotonic() - killed:.1f} s after the scheduler died")
            assert reply.status == "error" and reply.ename == "RunLostError", reply.text
            assert "lost its connection to the scheduler" in reply.text and "%cluster start" in reply.text
            assert "Traceback" not in reply.text

            kernel.ok("%cluster start --workers 1", timeout=120)
            assert kernel.ok("%distribute x + 1 for x in range(3)").value() == "[1, 2, 3]"
    finally:
        procs.close()


def test_worker_killed_at_ninety_percent_recomputes_none_of_the_items_it_had_finished(faulty, tmp_path):
    ip, p, client = faulty
    ip.user_ns["LOG"] = str(tmp_path)
    cell = ("import os, time\nopen(os.path.join(LOG, f'{x}.log'), 'a').write('.')\n"
            "time.sleep(0.2)\nx * x")
    run = _run(ip, "x in range(40) --batch 1", cell)

    def ninety_percent_home() -> bool:
        assert not run.done(), "the run ended before 90% of its items came home"
        return sum(1 for e in run.ledger.entries("map") if e.state == "home") >= 36

    wait_until(ninety_percent_home, 120, "36 of 40 items home", interval=0.02)
    home = {e.start for e in run.ledger.entries("map") if e.state == "home"}
    before = worker_pids(client)
    assert kill_pid(before["w1"], _owners(p))
    assert run.result(timeout=120) == [x * x for x in range(40)]
    runs = {int(f.stem): len(f.read_text()) for f in tmp_path.glob("*.log")}
    assert all(runs[x] == 1 for x in home), {x: runs[x] for x in home if runs[x] != 1}
    record("late-kill", f"40 items x 0.2 s, w1 killed with {len(home)} items home: "
           f"{sum(n - 1 for n in runs.values())} items ran again (all unfinished ones)")
    wait_for_workers(client, 2)


# --- stopping long items on workers of separate processes (dask worker, with and without nanny) ------

LONG_CELL = ("import time\nstarted = time.monotonic()\n"
             "if x == 0:\n    time.sleep(60)  # C code: only a new process frees its thread\n"
             "while time.monotonic() - started < 60:  # Python: a stop interrupts it\n    pass\nx")


def _executing(client: Client, workers: list[str] | None = None) -> int:
    counts = client.run(lambda dask_worker: len(dask_worker.state.executing), workers=workers, on_error="ignore")
    return sum(counts.values())


def _cancel_once_running(ip: Any, client: Client, items: int, workers: str) -> tuple[Run, float]:
    """Start ``items`` LONG_CELL items on ``workers``, cancel once each runs; the run and the
    seconds cancel() took."""
    run = _run(ip, f"x in range({items}) --batch 1 --workers {workers}", LONG_CELL)
    wait_until(lambda: _executing(client) == items, 60, f"{items} item(s) running")
    started = time.monotonic()
    run.cancel()
    return run, time.monotonic() - started


def test_cancel_of_long_items_restarts_only_the_worker_stuck_in_c_code(faulty):
    ip, p, client = faulty
    before = worker_pids(client)
    run, cancelled = _cancel_once_running(ip, client, 2, "w1,w2")
    report = run.stop_report
    assert report is not None and run.state == "cancelled"
    assert [index for index, _, _ in report.interrupted] == [1]
    assert len(report.restarted) == 1
    worker, pid, items = report.restarted[0]
    assert items == [(0, "0")] and pid in before.values()
    after: dict[str, int] = {}

    def back() -> bool:
        after.clear()
        after.update(worker_pids(client))
        return len(after) == 2 and pid not in after.values()

    wait_until(back, 60, "the nanny brings the stuck worker back as a new process")
    assert [name for name in before if before[name] != after[name]] == \
        [name for name in before if before[name] == pid]  # the other worker kept its process
    assert _executing(client) == 0
    assert ip.run_cell_magic("distribute", "x in range(4) --view none", "x") == [0, 1, 2, 3]
    record("interrupt", f"Run.cancel() on dask-worker processes (an item in time.sleep(60), one in a Python "
           f"loop): returned in {cancelled:.2f} s; restarted pid {pid} only")


def test_an_item_stuck_on_a_worker_without_nanny_is_reported_and_not_waited_for(faulty):
    ip, p, client = faulty
    p.start_worker("solo", nanny=False)
    try:
        wait_for_workers(client, 3)
        run, cancelled = _cancel_once_running(ip, client, 1, "solo")
        report = run.stop_report
        assert report is not None and [w for w, _ in report.no_nanny] and not report.restarted
        line = run.stop_report.lines()[1]
        assert "has no nanny to restart it" in line and "item #0 (0)" in line, line
        assert cancelled < 30, f"cancel() took {cancelled:.1f} s"  # about the grace (1 s): no hang
        assert ip.run_cell_magic("distribute", "x in range(4) --workers w1,w2 --view none", "x") == [0, 1, 2, 3]
    finally:
        p.kill_group(p.workers.pop("solo"))
