"""Workload 6: the same ``%%distribute`` cell in a real Jupyter kernel, with the full live view
and with none, timed from the client as a notebook sees it (execute request to idle).

Used when ``bench/bench_view.py`` (written with the live views) is not there.
"""

from __future__ import annotations

import time
from typing import Any

from .spec import Recorder, Settings, side_main

SETUP = """
%load_ext ipydistribute
from ipydistribute.core import cluster as _cluster
_cluster.start_local(gpus="none")
def spin_item(item):
    index, n = item
    total = 0
    for i in range(n):
        total += i
    return total % 7 + index
"""


def execute(kc: Any, code: str, timeout: float = 300) -> tuple[float, int]:
    """Run ``code`` in the kernel; returns the seconds until the kernel is idle again, and the
    number of messages the cell sent on IOPub (view updates and outputs)."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    messages = 0
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages += 1
        if msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"])[-2000:])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return time.perf_counter() - started, messages


def run(s: Settings, rec: Recorder) -> None:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, SETUP)
        loops = max(1, round(s.spin_big * s.view_item_seconds / 0.25))
        cell = (
            "%%distribute x in [(i, {loops}) for i in range({n})] --reduce sum --view {view}\n"
            "spin_item(x)"
        )
        execute(kc, cell.format(loops=loops, n=4, view="full"))  # warm
        times: dict[str, list[float]] = {"full": [], "none": []}
        counts: dict[str, int] = {}
        for rep in range(s.repeats):
            for view in ("full", "none") if rep % 2 == 0 else ("none", "full"):
                elapsed, counts[view] = execute(
                    kc, cell.format(loops=loops, n=s.view_items, view=view)
                )
                times[view].append(elapsed)
        from .spec import Measure

        for view in ("full", "none"):
            rec.add(
                Measure(
                    "view",
                    "ipydistribute",
                    f"%%distribute --view {view} (kernel)",
                    times[view],
                    items=s.view_items,
                    note=f"{counts[view]} IOPub messages per run",
                )
            )
        execute(kc, "_cluster.stop()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    side_main(run)
