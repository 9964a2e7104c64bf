"""A class on one cluster: eight real kernels connected to one scheduler run a %%distribute cell
at the same time. Every answer is right (each kernel's values carry its own identity, so a task
shared by mistake between kernels would show), task keys never collide between kernels, and the
scheduler keeps answering. The slowest kernel's time against one kernel alone is printed."""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Iterator

import pytest
from dask_procs import Procs, wait_for_workers
from distributed import Client
from figures import record
from kernel_helpers import Kernel

pytestmark = pytest.mark.slow

KERNELS = 8
SETUP = """
%load_ext ipydistribute
%cluster connect {address}
import time
K = {k}
durations = []
def _started(info):
    global _t0
    _t0 = time.perf_counter()
def _ended(result):
    durations.append(time.perf_counter() - _t0)
get_ipython().events.register("pre_run_cell", _started)
get_ipython().events.register("post_run_cell", _ended)
"""
# The default label (cellN) is the same in every kernel at the same point: only the run token
# keeps the keys apart. The value carries K, the kernel's number.
CELL = "%%distribute x in range(20) --batch 1 --view none --out answer\nimport time\ntime.sleep(0.1)\n(x * x, K)"


def _start_kernels(n: int) -> list[Kernel]:
    kernels = [Kernel() for _ in range(n)]
    for kernel in kernels:  # start them all, then wait for them all: they boot in parallel
        kernel.km.start_kernel()
    for kernel in kernels:
        kernel.kc = kernel.km.client()
        kernel.kc.start_channels()
        kernel.kc.wait_for_ready(timeout=180)
    return kernels


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Kernel], Client]]:
    procs = Procs(tmp_path_factory.mktemp("class"))
    kernels: list[Kernel] = []
    try:
        address = procs.start_scheduler()
        procs.start_worker("c1", memory_limit="512MiB")
        procs.start_worker("c2", memory_limit="512MiB")
        observer = Client(address, set_as_default=False, timeout=60)
        try:
            wait_for_workers(observer, 2)
            kernels = _start_kernels(KERNELS)
            ids = [k.submit(SETUP.format(address=address, k=i)) for i, k in enumerate(kernels)]
            for kernel, msg_id in zip(kernels, ids):
                reply = kernel.collect(msg_id, timeout=180)
                assert reply.status == "ok", reply.text
            yield kernels, observer
        finally:
            observer.close()
    finally:
        for kernel in kernels:  # kill, not a polite shutdown one by one: the cluster is ours to kill too
            kernel.kc.stop_channels()
            kernel.km.shutdown_kernel(now=True)
        procs.close()


def _watch(observer: Client, stop: threading.Event, seen: dict[str, set[str]], latencies: list[float]) -> None:
    """Poll the scheduler: which client wants each run token's tasks, and how fast it answers."""
    def wanted(dask_scheduler):  # type: ignore[no-untyped-def]
        out: dict[str, list[str]] = {}
        for key, ts in dask_scheduler.tasks.items():
            if isinstance(key, tuple) and str(key[0]).startswith("cell"):
                token = str(key[0]).rsplit("-", 1)[-1]
                out.setdefault(token, []).extend(cs.client_key for cs in ts.who_wants)
        return out

    while not stop.is_set():
        started = time.perf_counter()
        snapshot = observer.run_on_scheduler(wanted)
        latencies.append(time.perf_counter() - started)
        for token, clients in snapshot.items():
            seen.setdefault(token, set()).update(clients)
        time.sleep(0.05)


def test_eight_kernels_at_once_get_their_own_right_answers(classroom):
    kernels, observer = classroom
    expected = lambda k: [(x * x, k) for x in range(20)]  # noqa: E731

    kernels[0].ok(CELL)  # alone (and warm)
    alone = float(kernels[0].ok("durations[-1]").value())
    assert ast.literal_eval(kernels[0].ok("answer").value()) == expected(0)

    seen: dict[str, set[str]] = {}
    latencies: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(observer, stop, seen, latencies), daemon=True)
    watcher.start()
    try:
        ids = [k.submit(CELL) for k in kernels]
        replies = [k.collect(msg_id, timeout=300) for k, msg_id in zip(kernels, ids)]
    finally:
        stop.set()
        watcher.join(30)
    for reply in replies:
        assert reply.status == "ok", reply.text
    for i, kernel in enumerate(kernels):
        assert ast.literal_eval(kernel.ok("answer").value()) == expected(i), f"kernel {i} got another's values"
    times = [float(k.ok("durations[-2]").value()) for k in kernels]  # [-1] is the `answer` cell

    # Every run token belongs to exactly one client: no kernel ever wanted another kernel's task.
    shared = {token: clients for token, clients in seen.items() if len(clients) > 1}
    assert not shared, f"tasks shared between kernels: {shared}"
    assert len(seen) >= KERNELS, f"saw the tasks of only {len(seen)} runs"
    assert max(latencies) < 30, "the scheduler stopped answering"  # a no-hang bound, not a timing
    record("class-load", f"{KERNELS} kernels at once, 20 items x 0.1 s each on 2 one-thread workers: "
           f"alone {alone:.2f} s, slowest {max(times):.2f} s ({max(times) / alone:.1f}x), median "
           f"{sorted(times)[len(times) // 2]:.2f} s; scheduler round trip max {max(latencies) * 1000:.0f} ms, "
           f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms over {len(latencies)} polls")
