"""A real Jupyter kernel driven through jupyter_client, as a notebook frontend drives it."""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager


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


#: Runs in a test kernel first: the extension, a 2-worker embedded cluster, and probes.
CLUSTER_SETUP = """
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

    def interrupt(self) -> None:
        self.km.interrupt_kernel()
