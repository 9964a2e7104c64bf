"""Ctrl-C in a real kernel in each phase of a run: while items are still being submitted, while
the items run, and while the reduction runs. Each time: KeyboardInterrupt in the cell, none of
the cell's tasks left on the scheduler, the same worker processes, and the next cell works.

(Interrupting a plain map run, items stuck in C code and kernel shutdown are in
test_kernel_interrupt.py.)"""

from __future__ import annotations

import ast
import time
from collections.abc import Callable, Iterator

import pytest
from distributed import Client
from figures import record
from kernel_helpers import CLUSTER_SETUP, Kernel
from waiting import wait_until

pytestmark = pytest.mark.slow

SETUP = CLUSTER_SETUP + """
pulled = 0
def slow_items(n):
    global pulled
    for i in range(n):
        time.sleep(0.05)
        pulled += 1
        yield i
def slow_sum(values):
    values = list(values)
    started = time.monotonic()
    # only the reduce tasks of the tree are slow, not each one-item batch; a Python loop, which a
    # stop interrupts (in time.sleep the stop would restart the worker, see test_kernel_interrupt)
    while len(values) > 1 and time.monotonic() - started < 8:
        pass
    return sum(values)
"""


@pytest.fixture(scope="module")
def session() -> Iterator[tuple[Kernel, Client, list[int]]]:
    """One kernel with its embedded cluster, and a client of the test on the same scheduler."""
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=180)
        address = ast.literal_eval(kernel.ok("client.scheduler.address").value())
        pids = ast.literal_eval(kernel.ok("worker_pids()").value())
        observer = Client(address, set_as_default=False, timeout=30)
        try:
            yield kernel, observer, pids
        finally:
            observer.close()


def _states(observer: Client, name: str) -> dict[str, str]:
    """Task key -> state on the scheduler, for the tasks of the cell named ``name``."""
    return observer.run_on_scheduler(lambda dask_scheduler, name=name: {
        str(k): ts.state for k, ts in dask_scheduler.tasks.items() if str(k).find(f"{name}-") >= 0})


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``check`` held (the phase tests report how long each phase took)."""
    started = time.monotonic()
    wait_until(check, timeout, what)
    return time.monotonic() - started


def _processing(states: dict[str, str], role: str) -> bool:
    return any(f"-{role}" in key and state == "processing" for key, state in states.items())


PHASES: dict[str, tuple[str, str, Callable[[dict[str, str]], bool]]] = {
    # a generator that yields for 10 s: the run is still submitting
    "submission": ("x in slow_items(200) --batch 1 --view none --name phase_sub", "x",
                   lambda s: _processing(s, "map") or any("-map" in k for k in s)),
    "run": ("x in range(40) --batch 1 --reduce sum --view none --name phase_run",
            "time.sleep(1)\nx", lambda s: _processing(s, "map")),
    "reduction": ("x in range(16) --batch 1 --reduce slow_sum --view none --name phase_red", "x",
                  lambda s: _processing(s, "reduce") and not _processing(s, "map")),
    # items of 60 s in a Python loop: the stop must reach the running items, not only their tasks
    "long items": ("x in range(4) --batch 1 --view none --name phase_long",
                   "started = time.monotonic()\nwhile time.monotonic() - started < 60:\n    pass\nx",
                   lambda s: _processing(s, "map")),
}


def _executing(observer: Client) -> int:
    """Tasks the workers' threads run now (a cancelled task keeps its thread until it ends)."""
    return sum(observer.run(lambda dask_worker: len(dask_worker.state.executing)).values())


@pytest.mark.parametrize("phase", list(PHASES))
def test_interrupt_in_each_phase_cancels_the_cell_and_keeps_the_workers(session, phase):
    kernel, observer, pids = session
    line, cell, in_phase = PHASES[phase]
    name = line.rsplit("--name ", 1)[1]
    kernel.ok("pulled = 0")
    msg_id = kernel.submit(f"%%distribute {line}\n{cell}")
    _wait_for(lambda: in_phase(_states(observer, name)), 60, f"the run reaches its {phase} phase")
    time.sleep(0.3)

    kernel.interrupt()
    interrupted = time.monotonic()
    reply = kernel.collect(msg_id, timeout=30)
    stopped = time.monotonic() - interrupted
    assert reply.status == "error" and reply.ename == "RunStopped", reply.text
    gone = _wait_for(lambda: not _states(observer, name), 30, f"no task of {name} left on the scheduler")
    free = _wait_for(lambda: _executing(observer) == 0, 30, "every worker thread free")
    record("interrupt", f"{phase}: KeyboardInterrupt {stopped:.2f} s after the interrupt, "
           f"tasks gone {gone:.2f} s later, worker threads free {free:.2f} s later")

    if phase == "submission":  # the driver stopped pulling items from the generator
        first = int(kernel.ok("pulled").value())
        time.sleep(1)
        assert first < 200 and int(kernel.ok("pulled").value()) == first
    assert ast.literal_eval(kernel.ok("worker_pids()").value()) == pids
    after = kernel.ok("%distribute x * 2 for x in range(4)")
    assert after.value() == "[0, 2, 4, 6]"
    assert "Task exception was never retrieved" not in reply.text + after.text
    assert "Traceback" not in after.text
