"""Long work on the session's cluster: per-item retries, values streamed home, bounded reductions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ipydistribute.core import mapping
from ipydistribute.core.errors import SpecError
from ipydistribute.core.keys import parse_key
from ipydistribute.core.on_scheduler import ask_scheduler
from ipydistribute.core.run import Run

pytestmark = pytest.mark.slow

FLAKY = """import os, zlib
open(os.path.join(LOG, f"{x}.log"), "a").write(".")
marker = os.path.join(LOG, f"{x}.failed")
if zlib.crc32(f"{SEED}-{x}".encode()) % 50 == 0 and not os.path.exists(marker):
    open(marker, "w").close()
    raise RuntimeError(f"flaky item {x}")
x * 3"""


def test_retries_rerun_only_the_failed_items_ten_runs_of_400(ip: Any, tmp_path: Path):
    for run in range(10):
        log = tmp_path / f"run{run}"
        log.mkdir()
        ip.user_ns.update(LOG=str(log), SEED=run)
        values = ip.run_cell_magic("distribute", "x in range(400) --retries 1 --view none", FLAKY)
        assert values == [x * 3 for x in range(400)], f"run {run}"
        runs = {int(p.stem): len(p.read_text()) for p in log.glob("*.log")}
        failed = {int(p.stem) for p in log.glob("*.failed")}
        assert failed, "some items should have failed once"  # about 2% of 400
        assert {x for x, n in runs.items() if n == 2} == failed
        assert all(runs[x] == 1 for x in range(400) if x not in failed), "a succeeded item ran twice"


def test_as_completed_yields_every_item_once_as_it_comes_home(ip: Any):
    run = ip.run_cell_magic("distribute", "x in range(40) --batch 3 --nowait --view none",
                            "import time\ntime.sleep(0.01 * (x % 4))\nx * x")
    assert isinstance(run, Run)
    pairs = list(run.as_completed())
    assert sorted(pairs) == [(x, x * x) for x in range(40)]
    assert run.result() == [x * x for x in range(40)]


def test_as_completed_refuses_a_reduction(ip: Any):
    run = ip.run_cell_magic("distribute", "x in range(10) --reduce sum --nowait --view none", "x")
    with pytest.raises(SpecError, match="as_completed"):
        next(run.as_completed())
    assert run.result() == 45


def test_as_completed_raises_the_error_after_the_values_before_it(ip: Any):
    run = ip.run_cell_magic("distribute", "x in range(6) --batch 1 --nowait --view none",
                            "import time\nif x == 5:\n    time.sleep(1)\n    raise ValueError(x)\nx")
    seen = []
    with pytest.raises(Exception, match="ValueError"):
        for pair in run.as_completed():
            seen.append(pair)
    assert sorted(seen) == [(x, x) for x in range(5)]


def test_a_reduction_of_large_partials_bounds_its_tasks_in_flight(ip: Any):
    cell = "import numpy as np\nnp.full(2**18, float(x))"  # 2 MiB values
    run = ip.run_cell_magic("distribute", "x in range(60) --batch 1 --reduce sum --nowait --view none", cell)
    value = run.result(timeout=120)
    assert float(value[0]) == sum(range(60))
    assert run.max_in_flight is not None and run.max_in_flight <= 2 * run.threads + 4


def test_a_reduction_of_small_partials_is_submitted_at_once(ip: Any):
    run = ip.run_cell_magic("distribute", "x in range(200) --batch 1 --reduce sum --nowait --view none", "x")
    assert run.result(timeout=120) == sum(range(200))
    assert run.max_in_flight is None


def test_a_run_never_waits_while_nothing_is_in_flight(ip: Any, monkeypatch: Any):
    # a reduction and a generator start under a bound on tasks in flight: waiting for room
    # before the first task was submitted cost each such cell 100 ms (8 items: 136 -> 34 ms)
    idle_waits = []
    take_ended = Run._take_ended

    def watched(run: Run, timeout: float) -> Any:
        if timeout > 0 and not run._ended_futures and run.ledger.in_flight() == 0:
            idle_waits.append((run.label, timeout))
        return take_ended(run, timeout)

    monkeypatch.setattr(Run, "_take_ended", watched)
    reduced = ip.run_cell_magic("distribute", "x in range(8) --reduce sum --view none --name idlesum", "x * x")
    streamed = ip.run_cell_magic("distribute", "x in (i for i in range(8)) --view none --name idlegen", "x")
    assert (reduced, streamed) == (140, list(range(8)))
    assert idle_waits == []


def test_a_run_of_many_tasks_has_a_bounded_number_of_them_on_the_scheduler_at_once(
        ip: Any, client: Any, monkeypatch: Any):
    # 40,000 one-item tasks submitted at once kept the kernel's scheduler taking them in for
    # seconds: an interrupt 1 s in ended 5 s later and left 32,000 of them on the cluster.
    from distributed.diagnostics.plugin import SchedulerPlugin

    monkeypatch.setattr(mapping, "SUBMIT_CHUNK", 50)
    monkeypatch.setattr(mapping, "IN_FLIGHT_AT_MOST", 200)
    waiting = ("waiting", "queued", "processing", "no-worker")

    class MapTasksOn(SchedulerPlugin):  # type: ignore[misc]
        """How many map tasks of runs the scheduler has not seen end, at most."""

        def __init__(self) -> None:
            self.now = self.most = 0

        def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
            parsed = parse_key(key)
            if parsed is not None and parsed[2] == "map" and (start in waiting) != (finish in waiting):
                self.now += 1 if finish in waiting else -1
                self.most = max(self.most, self.now)

    plugin = MapTasksOn()
    ask_scheduler(client, lambda dask_scheduler: dask_scheduler.add_plugin(plugin, name="map-tasks-on"))
    try:
        value = ip.run_cell_magic("distribute", "x in range(1500) --batch 1 --reduce sum --view none", "x * x")
    finally:
        ask_scheduler(client, lambda dask_scheduler: dask_scheduler.remove_plugin(name="map-tasks-on"))
    assert value == sum(x * x for x in range(1500))
    assert 50 <= plugin.most <= 200


def test_the_results_of_finished_tasks_leave_the_workers_during_the_run(ip: Any, client: Any):
    run = ip.run_cell_magic("distribute", "x in range(30) --batch 1 --nowait --view none",
                            "import time\ntime.sleep(0.05)\nx")
    held = []
    while not run.done():
        held.append(sum(1 for key, where in client.who_has().items() if run.token in str(key) and where))
    assert run.result() == list(range(30))
    assert held and max(held) < 30


def test_checkpoint_refuses_what_it_cannot_resume(ip: Any, tmp_path: Path):
    from IPython.core.error import UsageError

    for line, words in ((f"x in range(4) --reduce sum --checkpoint {tmp_path}", "--reduce"),
                        (f"x in (i for i in range(4)) --checkpoint {tmp_path}", "generator"),
                        (f"x in range(4) --keep --checkpoint {tmp_path}", "--keep")):
        with pytest.raises(UsageError, match=words):
            ip.run_cell_magic("distribute", line + " --view none", "x")


def test_checkpoint_with_skipped_items_stores_the_others_and_resumes_in_order(ip: Any, tmp_path: Path,
                                                                                capsys: Any):
    line = f"x in range(12) --batch 2 --on-error skip --checkpoint {tmp_path / 'c'} --view none"
    cell = "if x in FAIL:\n    raise ValueError(x)\nx * 2"
    ip.user_ns["FAIL"] = {3, 7}
    with pytest.warns(RuntimeWarning, match="2 item"):
        first = ip.run_cell_magic("distribute", line, cell)
    assert first == [x * 2 for x in range(12) if x not in (3, 7)]
    capsys.readouterr()
    run = ip.run_cell_magic("distribute", line + " --nowait", cell)  # same cell, same data: resumes
    assert run.result() == first and run.ledger.tasks_submitted == 2  # only the two failed items
    assert "10 of 12 items were stored" in capsys.readouterr().out
    assert sorted(run.as_completed()) == [(x, x * 2) for x in range(12) if x not in (3, 7)]


def test_a_long_list_of_numbers_sends_its_first_round_before_the_rest_is_packed(ip: Any, monkeypatch: Any):
    from ipydistribute.core import number_lists, submit

    monkeypatch.setattr(number_lists, "_PIECE", 10_000)
    monkeypatch.setattr(mapping, "PIPELINED_PACKING", 50_000)
    events: list[tuple[str, int]] = []  # ("piece", items packed after it) / ("call", batches in it)
    packing, submitting = number_lists.Packer.pack_piece, submit.Submitter.batches

    def pack_piece(self: Any) -> bool:
        packed = packing(self)
        events.append(("piece", self.packed))
        return packed

    def batches(self: Any, batches: list[Any], role: Any = "map") -> Any:
        assert all(batch._items is None and batch._numbers == "i" for batch in batches)  # views of the packed list
        events.append(("call", len(batches)))
        return submitting(self, batches, role)

    monkeypatch.setattr(number_lists.Packer, "pack_piece", pack_piece)
    monkeypatch.setattr(submit.Submitter, "batches", batches)
    ip.user_ns["data"] = data = list(range(300_000))
    assert ip.run_cell_magic("distribute", "x in data --batch 20000 --view none", "x * 3") == [3 * x for x in data]
    first = events.index(next(event for event in events if event[0] == "call"))
    packed_before = max([n for kind, n in events[:first] if kind == "piece"], default=0)
    assert packed_before < len(data) and ("piece", len(data)) in events[first:]  # the rest packed after
    assert sum(n for kind, n in events if kind == "call") == 15
