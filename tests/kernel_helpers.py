"""A real Jupyter kernel driven through jupyter_client, as a notebook frontend drives it."""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager
from waiting import wait_until


@dataclass
class Reply:
    status: str
    ename: str | None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        for out in self.outputs:
            if out["msg_type"] == "stream":
                parts.append(out["content"]["text"])
            elif out["msg_type"] in ("execute_result", "display_data"):
                parts.append(out["content"]["data"].get("text/plain", ""))
            elif out["msg_type"] == "error":
                parts.append("\n".join(out["content"]["traceback"]))
        return "".join(parts)

    def value(self) -> str:
        for out in self.outputs:
            if out["msg_type"] == "execute_result":
                return str(out["content"]["data"]["text/plain"])
        raise AssertionError(f"no value; output was:\n{self.text}")


#: The tests' one way to wait (tests/waiting.py), for code that waits inside a test kernel.
KERNEL_WAIT_UNTIL = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from waiting import wait_until
"""

#: Runs in a test kernel first: the extension, a 2-worker embedded cluster, probes, wait_until.
CLUSTER_SETUP = KERNEL_WAIT_UNTIL + """
%load_ext ipydistribute
%cluster start --workers 2
import os, time, ipydistribute
client = ipydistribute.get_client()
def worker_pids():
    return sorted(client.run(os.getpid).values())
def tasks_left():
    return len(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.tasks)))
"""


class Kernel:
    """Start a kernel, run code in it, interrupt it; always shut it down (use as a context manager)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.env = env  # extra environment variables of the kernel process

    def __enter__(self) -> Kernel:
        self.km.start_kernel(**({"env": {**os.environ, **self.env}} if self.env else {}))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        return self

    def __exit__(self, *exc: object) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)

    def submit(self, code: str) -> str:
        return str(self.kc.execute(code))

    def collect(self, msg_id: str, timeout: float = 120) -> Reply:
        """Wait for the reply to ``msg_id`` and every output it produced (up to the idle status)."""
        deadline = time.monotonic() + timeout
        outputs: list[dict[str, Any]] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle status for {msg_id} within {timeout} s")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] in ("stream", "execute_result", "display_data", "error", "update_display_data"):
                outputs.append(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        return Reply(content["status"], content.get("ename"), outputs)

    def run(self, code: str, timeout: float = 120) -> Reply:
        return self.collect(self.submit(code), timeout)

    def ok(self, code: str, timeout: float = 120) -> Reply:
        reply = self.run(code, timeout)
        assert reply.status == "ok", reply.text
        return reply

    def next_output(self, msg_id: str, timeout: float) -> dict[str, Any] | None:
        """The next message on the output channel if it belongs to ``msg_id``; None when it is
        another request's, or when none came within ``timeout`` seconds."""
        try:
            msg: dict[str, Any] = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        return msg if msg["parent_header"].get("msg_id") == msg_id else None

    def wait_for_output(self, msg_id: str, text: str, count: int = 1, timeout: float = 60) -> str:
        """Read the output of ``msg_id`` until ``text`` has been printed ``count`` times (items that
        print as they start have started); return what was read. ``collect`` gets the rest."""
        seen: list[str] = []

        def printed() -> bool:
            msg = self.next_output(msg_id, 0.5)
            if msg is None:
                return False
            if msg["msg_type"] == "stream":
                seen.append(msg["content"]["text"])
            elif msg["msg_type"] == "error" or msg["content"].get("execution_state") == "idle":
                raise AssertionError(f"the cell ended before {text!r} was printed {count} time(s): {''.join(seen)}")
            return "".join(seen).count(text) >= count

        wait_until(printed, timeout, f"{text!r} printed {count} time(s)", log=lambda: "".join(seen), interval=0)
        return "".join(seen)

    def interrupt(self) -> None:
        self.km.interrupt_kernel()
