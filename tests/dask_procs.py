"""A Dask cluster made of real ``dask scheduler`` / ``dask worker`` processes, for fault tests.

Every process is started in its own process group on 127.0.0.1 with free ports, and the test
that started it can kill exactly it (and only it): a worker, its nanny, or the scheduler.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from waiting import wait_until

from ipydistribute.core import identity

DASK = str(Path(sys.executable).with_name("dask"))


class Procs:
    """A scheduler and named workers; ``close()`` kills every process group it started."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None):
        self.tmp = tmp
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.scheduler_file = tmp / "scheduler.json"
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._all: list[subprocess.Popen[bytes]] = []

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.tmp / log, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)  # its own process group: a kernel's Ctrl-C never reaches it
        out.close()
        self._all.append(proc)
        return proc

    def start_scheduler(self, *extra: str, timeout: float = 60) -> str:
        self.scheduler_file.unlink(missing_ok=True)
        self.scheduler = self._spawn([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                      "--dashboard-address", "127.0.0.1:0", "--no-show",
                                      "--scheduler-file", str(self.scheduler_file), *extra], "scheduler.log")
        wait_until(lambda: scheduler_address(self.scheduler_file) or self.scheduler.poll() is not None, timeout,
                   "the scheduler's file", log=lambda: self.log("scheduler.log"))
        if self.scheduler.poll() is not None:
            raise RuntimeError(f"the scheduler did not start:\n{self.log('scheduler.log')}")
        return self.address

    @property
    def address(self) -> str:
        return scheduler_address(self.scheduler_file)

    def start_worker(self, name: str, memory_limit: str = "512MiB", nanny: bool = True,
                     extra: tuple[str, ...] = ()) -> None:
        self.workers[name] = self._spawn(
            [DASK, "worker", "--scheduler-file", str(self.scheduler_file), "--name", name,
             "--host", "127.0.0.1", "--nthreads", "1", "--memory-limit", memory_limit,
             "--no-dashboard", "--death-timeout", "60", "--nanny" if nanny else "--no-nanny", *extra],
            f"worker-{name}.log")

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process we started and everything in its process group (a nanny's worker)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def kill_scheduler(self) -> None:
        assert self.scheduler is not None
        self.kill_group(self.scheduler)

    def close(self) -> None:
        for proc in reversed(self._all):
            self.kill_group(proc)


def worker_pids(client: Any) -> dict[str, int]:
    """Worker name -> pid of the worker process (a nanny's child, when there is a nanny)."""
    info = identity.workers(client)
    pids = client.run(os.getpid, on_error="ignore")  # a dying worker does not answer
    return {str(w["name"]): pids[address] for address, w in info.items() if address in pids}


def kill_pid(pid: int, owner_pids: set[int]) -> bool:
    """SIGKILL ``pid`` only if one of the processes this test started is its parent or itself."""
    try:
        proc = psutil.Process(pid)
        if pid not in owner_pids and proc.ppid() not in owner_pids:
            raise AssertionError(f"refusing to kill {pid}: not started by this test")
        proc.send_signal(signal.SIGKILL)
        return True
    except psutil.NoSuchProcess:
        return False


def scheduler_address(scheduler_file: Path) -> str:
    """The address in a scheduler file; "" while the file is missing or not yet whole."""
    try:
        return str(json.loads(scheduler_file.read_text())["address"])
    except (FileNotFoundError, ValueError, KeyError):
        return ""


def wait_for_workers(client: Any, n: int, timeout: float = 90) -> None:
    wait_until(lambda: len(identity.workers(client)) >= n, timeout, f"{n} workers")
