"""What the live view costs: the same ``%%distribute`` cell in a real kernel with ``--view full``
and ``--view none``, on the same cluster, and the size of the view's update messages and of the
output it leaves in the saved notebook.

Run: ``.venv/bin/python bench/bench_view.py [--tasks 10000] [--sizes 100,100000] [--repeat 3]``.
Prints the figures and the ratios (target: full/none <= 1.05; update messages < 20 KB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

SETUP = """
%load_ext ipydistribute
%cluster start --workers 2
"""

CELL = "%%distribute x in range({n}) --batch 1 --view {view} --reduce sum --name bench{n}\nx"


def _size(msg: dict[str, Any]) -> int:
    buffers = sum(len(b) for b in msg.get("buffers") or [])
    return len(json.dumps(msg["content"], default=str)) + buffers


def execute(kc: Any, code: str, timeout: float = 900) -> dict[str, Any]:
    """Run ``code``; seconds to idle, the comm messages (time, bytes) and the display bytes."""
    started = time.perf_counter()
    msg_id = kc.execute(code)
    comms: list[tuple[float, int]] = []
    final = 0
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id and msg["msg_type"] != "comm_msg":
            continue
        kind = msg["msg_type"]
        if kind == "comm_msg":
            comms.append((time.perf_counter() - started, _size(msg)))
        elif kind in ("display_data", "update_display_data"):
            final = _size(msg)  # the last one is the static picture that stays
        elif kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return {"seconds": time.perf_counter() - started, "comms": comms, "saved": final}


def per_update(comms: list[tuple[float, int]], window: float = 0.2) -> list[int]:
    """Bytes sent per view update: comm messages grouped by the display's 0.2 s period."""
    buckets: dict[int, int] = {}
    for t, n in comms:
        buckets[int(t / window)] = buckets.get(int(t / window), 0) + n
    return list(buckets.values())


def main() -> None:
    from jupyter_client.manager import start_new_kernel

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--sizes", default="100,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, SETUP)
        execute(kc, CELL.format(n=200, view="full"))  # warm up workers, plugin, imports
        times: dict[str, list[float]] = {"full": [], "none": []}
        for _ in range(args.repeat):
            for view in ("none", "full"):  # alternate, so drift hits both
                times[view].append(execute(kc, CELL.format(n=args.tasks, view=view))["seconds"])
        full, none = statistics.median(times["full"]), statistics.median(times["none"])
        print(f"{args.tasks:,} tasks: --view none {none:.2f} s, --view full {full:.2f} s "
              f"(medians of {args.repeat}); full/none = {full / none:.3f}x (target <= 1.05x)")
        for n in (int(s) for s in args.sizes.split(",")):
            result = execute(kc, CELL.format(n=n, view="full"))
            updates = per_update(result["comms"])
            largest = max((b for _, b in result["comms"]), default=0)
            print(f"{n:,} tasks ({result['seconds']:.1f} s): {len(result['comms'])} comm messages, "
                  f"per update max {max(updates, default=0) / 1024:.1f} KB, "
                  f"median {statistics.median(updates or [0]) / 1024:.1f} KB, largest message "
                  f"{largest / 1024:.1f} KB (target < 20 KB); saved output "
                  f"{result['saved'] / 1024:.1f} KB")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
