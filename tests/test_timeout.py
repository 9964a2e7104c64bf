"""``--timeout SECONDS``: an item running longer fails with a timeout (subject to --on-error), in
Python code by an exception raised in its thread, in C code by restarting its worker process.

Real kernel, real embedded cluster (2 workers of 1 thread): a worker restart is part of the test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

import pytest
from figures import record
from IPython.core.error import UsageError
from kernel_helpers import CLUSTER_SETUP, Kernel

from ipydistribute.core.errors import SpecError

SETUP = CLUSTER_SETUP + """
from ipydistribute.core import identity, stopping
from ipydistribute.core.errors import ItemFailure
def spin(seconds):
    started = time.monotonic()
    while time.monotonic() - started < seconds:  # pure Python: the timeout interrupts it
        pass
def kinds(values):
    return [type(v).__name__ if isinstance(v, ItemFailure) else v for v in values]
def failure_of(values):
    failures = [v for v in values if isinstance(v, ItemFailure)]
    return failures[0].exc_type, failures[0].message
def workers():
    return len(identity.workers(client))
def wait_for_workers(n):
    # a worker whose item timed out is killed ~0.2 s after its failure reached the run: the
    # cell can return before its worker left, so first wait for the restarts the engine expects
    stopping.wait_for_restarts(client, timeout=120)
    wait_until(lambda: workers() >= n, 120, f"{n} workers", interval=0.1)
    return workers()
def wait_for_restarts(old, n):
    # the worker pids once n of old were replaced by new processes
    def restarted():
        now = worker_pids()
        return len(now) == len(old) and len(set(old) - set(now)) >= n
    wait_until(restarted, 120, f"{n} of the workers {old} restarted", interval=0.1)
    return worker_pids()
"""


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=180)
        yield kernel


def _timed(kernel: Kernel, code: str) -> tuple[Any, float]:
    kernel.ok("assert wait_for_workers(2) == 2")  # a restart by the test before must be over
    kernel.ok("t = time.monotonic()")
    reply = kernel.ok(code, timeout=120)
    return reply, float(kernel.ok("round(time.monotonic() - t, 2)").value())


@pytest.mark.slow
def test_an_item_sleeping_past_its_timeout_fails_and_the_19_others_come_back(kernel):
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    _, seconds = _timed(kernel, "%%distribute x in range(20) --timeout 2 --on-error collect --view none --out res\n"
                        "time.sleep(60) if x == 7 else None\nx")
    values = ast.literal_eval(kernel.ok("kinds(res)").value())
    assert values == [*range(7), "ItemFailure", *range(8, 20)]
    kind, message = ast.literal_eval(kernel.ok("failure_of(res)").value())
    assert kind == "ItemTimeout"
    assert message.startswith("item #7 (7) ran longer than --timeout 2 s: still running after ")
    assert " s on tcp://127.0.0.1:" in message and "restarted" in message
    assert seconds < 45, f"the run took {seconds} s"  # the item alone would take 60 s
    now = ast.literal_eval(kernel.ok(f"wait_for_restarts({pids}, 1)").value())
    assert len(now) == 2 and len(set(pids) - set(now)) == 1  # the sleeper's worker, and only it, is a new process
    assert kernel.ok("%distribute x for x in range(4)").value() == "[0, 1, 2, 3]"
    record("timeout", f"--timeout 2, one item sleeping 60 s and 19 fast ones, --on-error collect: "
           f"19 values and one timeout failure in {seconds:.2f} s; its worker restarted")


@pytest.mark.slow
def test_a_python_loop_past_its_timeout_is_interrupted_without_a_restart(kernel):
    kernel.ok("assert wait_for_workers(2) == 2")
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    _, seconds = _timed(kernel, "%%distribute x in range(6) --timeout 1 --on-error collect --view none --out res\n"
                        "spin(60) if x == 1 else None\nx")
    assert ast.literal_eval(kernel.ok("kinds(res)").value()) == [0, "ItemFailure", 2, 3, 4, 5]
    kind, message = ast.literal_eval(kernel.ok("failure_of(res)").value())
    assert kind == "ItemTimeout" and message.startswith("item #1 (1) ran longer than --timeout 1 s: stopped after ")
    assert ast.literal_eval(kernel.ok("worker_pids()").value()) == pids
    record("timeout", f"--timeout 1 on a Python loop of 60 s: interrupted, no restart, run done in {seconds:.2f} s")


@pytest.mark.slow
def test_a_timeout_under_on_error_raise_fails_the_cell_with_the_timeout(kernel):
    kernel.ok("assert wait_for_workers(2) == 2")
    reply = kernel.run("%%distribute x in range(4) --timeout 1 --view none\ntime.sleep(60) if x == 2 else None\nx",
                       timeout=120)
    assert reply.status == "error" and reply.ename == "CellError", reply.text
    assert "ItemTimeout in item #2 (2)" in reply.text and "ran longer than --timeout 1 s" in reply.text
    kernel.ok("assert wait_for_workers(2) == 2")
    assert kernel.ok("%distribute x for x in range(4)").value() == "[0, 1, 2, 3]"


@pytest.mark.slow
def test_the_items_after_stuck_ones_in_their_batch_still_run(kernel):
    kernel.ok("assert wait_for_workers(2) == 2")
    kernel.ok("%%distribute x in range(10) --batch 5 --timeout 1 --on-error collect --view none --out res\n"
              "time.sleep(60) if x in (2, 3) else None\nx", timeout=120)
    assert ast.literal_eval(kernel.ok("kinds(res)").value()) == [0, 1, "ItemFailure", "ItemFailure", *range(4, 10)]
    messages = ast.literal_eval(kernel.ok("[f.message for f in res if isinstance(f, ItemFailure)]").value())
    assert [m.split(" ran longer")[0] for m in messages] == ["item #2 (2)", "item #3 (3)"]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "inf", "nan"])
def test_a_timeout_that_is_not_a_positive_number_is_one_clear_line(ip, value):
    with pytest.raises(UsageError) as err:
        ip.run_cell_magic("distribute", f"x in range(2) --timeout {value} --view none", "x")
    assert "--timeout" in str(err.value) and "\n" not in str(err.value)


def test_the_python_api_checks_its_timeout(client):
    import ipydistribute

    with pytest.raises(SpecError, match="--timeout takes a positive number of seconds"):
        ipydistribute.distribute(abs, range(2), timeout="2")
    assert ipydistribute.distribute(abs, [-1, 2], timeout=30) == [1, 2]


@pytest.mark.slow
def test_repeated_timeouts_in_c_code_keep_the_cluster_whole(kernel):
    # every item sleeps: each one restarts its worker, three rounds of restarts within 15 s
    kernel.ok("assert wait_for_workers(2) == 2")
    kernel.ok("%%distribute x in range(6) --batch 1 --timeout 1 --on-error collect --view none --out res\n"
              "time.sleep(60)\nx", timeout=180)
    assert ast.literal_eval(kernel.ok("kinds(res)").value()) == ["ItemFailure"] * 6
    assert ast.literal_eval(kernel.ok("sorted({f.exc_type for f in res})").value()) == ["ItemTimeout"]
    # at once: the next run waits for the restarted workers instead of finding none
    assert kernel.ok("%distribute x for x in range(4)").value() == "[0, 1, 2, 3]"
    assert kernel.ok("wait_for_workers(2)", timeout=120).value() == "2"


@pytest.mark.slow
def test_a_timeout_under_on_error_skip_drops_the_item_with_a_warning(kernel):
    kernel.ok("assert wait_for_workers(2) == 2")
    reply = kernel.ok("%%distribute x in range(4) --batch 1 --timeout 1 --on-error skip --view none\n"
                      "time.sleep(60) if x == 1 else None\nx", timeout=120)
    assert reply.value() == "[0, 2, 3]"
    assert "1 item(s) of" in reply.text and "skipped; first: ItemTimeout" in reply.text, reply.text


@pytest.mark.slow
def test_kept_results_of_a_run_with_a_timeout_in_c_code_hold_the_timeout_in_place(kernel):
    kernel.ok("assert wait_for_workers(2) == 2")
    kernel.ok("%%distribute x in range(4) --batch 1 --timeout 1 --on-error collect --keep --view none --out kept\n"
              "time.sleep(60) if x == 2 else None\nx", timeout=120)
    assert ast.literal_eval(kernel.ok("kinds(kept.gather())").value()) == [0, 1, "ItemFailure", 3]
