"""Ctrl-C on long items in a real kernel: how long until the cell raises, the workers are free
and the next cell is done, and which worker processes were restarted.

``python -m bench.stop_long_items [REPEATS]`` prints one line per repetition and the medians.
Each repetition runs 2 items of 60 s on the kernel's embedded cluster of 2 single-thread workers
(the cases: both in ``time.sleep``, both in a Python loop, one of each), presses Ctrl-C once both
have started, then times the cell's KeyboardInterrupt, the workers being idle again (restarted
ones back) and a following 4-item cell.
"""

from __future__ import annotations

import ast
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from kernel_helpers import CLUSTER_SETUP, Kernel  # noqa: E402

SETUP = CLUSTER_SETUP + """
def spin(seconds):
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        pass
def idle_at(n, timeout=60):
    # wall-clock time at which n workers are present and none runs a task
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = client.run(lambda dask_worker: len(dask_worker.state.executing), on_error="ignore")
        if len(busy) == n and not any(busy.values()):
            return time.time()
        time.sleep(0.02)
    raise RuntimeError(f"not {n} idle workers after {timeout} s: {busy}, cluster {cluster_state()}")
def cluster_state():
    from ipydistribute.core import cluster as cluster_mod
    handle, _ = cluster_mod.current()
    spec = handle.cluster
    return {name: (getattr(w, "status", None), getattr(getattr(w, "process", None), "status", None))
            for name, w in getattr(spec, "workers", {}).items()}
"""

CASES = {
    "time.sleep": "time.sleep(60)",
    "python loop": "spin(60)",
    "one of each": "time.sleep(60) if x == 0 else spin(60)",
}


def _started(kernel: Kernel, msg_id: str, count: int) -> None:
    seen = 0
    while seen < count:
        msg = kernel.kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            seen += msg["content"]["text"].count("started")


def once(kernel: Kernel, body: str) -> dict[str, object]:
    pids = ast.literal_eval(kernel.ok("worker_pids()").value())
    msg_id = kernel.submit(f"%%distribute x in range(2) --batch 1 --view none\nprint('started', flush=True)\n"
                           f"{body}\nx")
    _started(kernel, msg_id, 2)
    kernel.interrupt()
    pressed = time.time()
    reply = kernel.collect(msg_id, timeout=120)
    raised = time.time() - pressed
    assert reply.ename == "KeyboardInterrupt", reply.text
    stop = re.search(r"stopped in ([0-9.]+) s", reply.text)
    free = float(kernel.ok("idle_at(2)", timeout=120).value()) - pressed
    assert kernel.ok("%distribute x for x in range(4)", timeout=120).value() == "[0, 1, 2, 3]"
    following = time.time() - pressed
    now = ast.literal_eval(kernel.ok("worker_pids()").value())
    return {"raised": raised, "stop": float(stop.group(1)) if stop else None, "free": free, "next": following,
            "restarted": sorted(set(pids) - set(now))}


def main(repeats: int = 3) -> None:
    with Kernel() as kernel:
        kernel.ok(SETUP, timeout=180)
        for name, body in CASES.items():
            rows = []
            for _ in range(repeats):
                row = once(kernel, body)
                rows.append(row)
                print(f"{name}: KeyboardInterrupt {row['raised']:.2f} s (stop {row['stop']} s), workers free "
                      f"{row['free']:.2f} s, next cell done {row['next']:.2f} s after Ctrl-C; restarted pids "
                      f"{row['restarted']}", flush=True)
            medians = {k: statistics.median(float(r[k]) for r in rows) for k in ("raised", "free", "next")}  # type: ignore[arg-type]
            print(f"{name} (median of {repeats}): KeyboardInterrupt {medians['raised']:.2f} s, workers free "
                  f"{medians['free']:.2f} s, next cell {medians['next']:.2f} s", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
