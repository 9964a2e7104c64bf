"""Kernel side of stopping a run: cancel its tasks, stop its items where they run, and restart
the worker processes whose item would not stop.

Dask's cancel releases a run's keys, but a running task keeps its worker thread until it ends.
:func:`stop_tasks` therefore also asks every worker to raise a stop in the threads running the
run's items (:func:`.item_watch.stop_run_items`); Python code stops at once, C code
(``time.sleep``, a long library call) does not, and after the grace period
(``ipydistribute.stop-grace``, 1 s) its worker process is killed and started anew by its nanny.
The restart runs in the background: the caller gets its report after about the grace period,
and the next run waits for the restarted workers to be back (:func:`wait_for_restarts`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import config, identity
from .item_watch import QuietRestart, kill_through_nanny, stop_run_items

#: How long the next run waits for workers restarted by a stop to come back.
RESTART_WAIT_SECONDS = 30.0

# old worker address -> (client id, nanny address): restarts asked for and not yet seen done
_restarting: dict[str, tuple[str, str]] = {}
#: an embedded cluster's nannies live in the kernel: their warnings about our restart would fill the cell
_quiet_nannies = QuietRestart("distributed.nanny", "Restarting worker", "Worker process still alive")


@dataclass
class StopReport:
    """What a stop did: the items it interrupted, and the workers it had to restart."""

    label: str
    grace: float
    interrupted: list[tuple[int, str, str]] = field(default_factory=list)  # (index, item, worker)
    restarted: list[tuple[str, int, list[tuple[int, str]]]] = field(default_factory=list)  # (worker, old pid, items)
    no_nanny: list[tuple[str, list[tuple[int, str]]]] = field(default_factory=list)  # (worker, items left running)
    silent: list[str] = field(default_factory=list)  # workers that did not answer in time
    seconds: float = 0.0
    problem: str = ""  # why the workers could not be asked at all

    def stopped_anything(self) -> bool:
        """Whether an item was running when the stop came (else only queued tasks were cancelled)."""
        return bool(self.interrupted or self.restarted or self.no_nanny or self.silent or self.problem)

    def lines(self, items_done: int | None = None, items_total: int | None = None) -> list[str]:
        """One line per fact, for the cell's output."""
        head = f"{self.label} stopped in {self.seconds:.1f} s"
        if items_done is not None:
            total = "" if items_total is None else f" of {items_total:,}"
            head += f": {items_done:,}{total} items had finished"
        if self.interrupted:
            head += f"; interrupted {_items(self.interrupted)}"
        lines = [head]
        for worker, pid, items in self.restarted:
            lines.append(f"{_items(items)} did not stop within {self.grace:g} s (C code): restarted worker "
                         f"{worker} (pid {pid}) through its nanny")
        for worker, items in self.no_nanny:
            lines.append(f"{_items(items)} did not stop within {self.grace:g} s, and worker {worker} has no "
                         "nanny to restart it: that thread stays busy until the item ends")
        for worker in self.silent:
            lines.append(f"worker {worker} did not answer the stop: its items may still run")
        if self.problem:
            lines.append(self.problem)
        return lines


def _items(items: Iterable[tuple[Any, ...]]) -> str:
    """``items #3 (3), #7 (7)``; a reduce task (index None) is named as such."""
    listed = sorted(items, key=lambda entry: (entry[0] is None, entry[0] or 0))
    reduces = sum(1 for index, *_ in listed if index is None)
    listed = [entry for entry in listed if entry[0] is not None]
    shown = ", ".join(f"#{index} ({item})" if item else f"#{index}" for index, item, *_ in listed[:5])
    more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
    parts = [f"item{'s' if len(listed) > 1 else ''} {shown}{more}"] if listed else []
    if reduces:
        parts.append(f"{reduces} reduce task{'s' if reduces > 1 else ''}")
    return " and ".join(parts)


def stop_tasks(client: Any, token: str, futures: list[Any], *, label: str = "", grace: float | None = None
               ) -> StopReport:
    """Cancel ``futures``, stop the items of run ``token`` running on any worker, and restart
    the workers whose item did not leave its thread within ``grace`` seconds.

    Returns after about ``grace`` seconds at most (plus a round trip); restarts go on in the
    background.
    """
    began = time.monotonic()
    grace = config.seconds("stop-grace") if grace is None else grace
    report = StopReport(label or token, grace)
    if futures:
        try:
            client.cancel(futures, force=True)
        except Exception:  # the client may already be closed: nothing is left to cancel then
            pass
    try:
        workers = list(identity.workers(client))
        replies = client.sync(_ask_workers, client, token, grace, workers)
    except Exception as exc:  # the scheduler is gone or unreachable: its tasks went with it
        report.problem = f"could not ask the workers to stop ({type(exc).__name__}: {exc})"
        report.seconds = time.monotonic() - began
        return report
    for address, reply in zip(workers, replies):
        if not isinstance(reply, dict):
            report.silent.append(address)
            continue
        report.interrupted.extend((index, item, address) for index, item in reply["interrupted"])
        stuck = [tuple(pair) for pair in reply["stuck"]]
        if not stuck:
            continue
        if reply["nanny"]:
            _restart(client, address, reply["nanny"])
            report.restarted.append((address, reply["pid"], stuck))  # type: ignore[arg-type]
        else:
            report.no_nanny.append((address, stuck))  # type: ignore[arg-type]
    report.seconds = time.monotonic() - began
    return report


async def _ask_workers(client: Any, token: str, grace: float, workers: list[str]) -> list[Any]:
    """Each worker's answer to the stop, or None for a worker that did not answer in time
    (its event loop may be held by code that keeps the GIL)."""

    async def ask(address: str) -> Any:
        try:
            replies = await asyncio.wait_for(
                client._run(stop_run_items, token, grace, workers=[address], on_error="return"), grace + 1.0)
        except Exception:
            return None
        return replies.get(address)

    return list(await asyncio.gather(*(ask(address) for address in workers)))


def expect_restart(client: Any, address: str, nanny: str) -> None:
    """Note that the worker at ``address`` is being restarted by its nanny (by a stop, or by
    itself after a ``--timeout``), so the next run waits for it."""
    _restarting[address] = (client.id, nanny)
    _quiet_nannies.arm()


def _restart(client: Any, address: str, nanny: str) -> None:
    if address in _restarting:  # asked already (a second stop of the same run)
        return
    expect_restart(client, address, nanny)

    async def kill() -> None:
        try:
            await kill_through_nanny(nanny, client.connection_args, "ipydistribute-stop")
        except Exception:  # the process may be gone already; wait_for_restarts looks at the result
            pass

    client.loop.add_callback(kill)


def wait_for_restarts(client: Any, timeout: float = RESTART_WAIT_SECONDS) -> None:
    """Before a run starts: wait until the workers that a stop restarted are back (new
    processes under the same nannies), so that the run sees its whole cluster."""
    pending = {old: nanny for old, (client_id, nanny) in _restarting.items() if client_id == client.id}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        workers = identity.workers(client)
        nannies = {info.get("nanny") for address, info in workers.items() if address not in pending}
        for old, nanny in list(pending.items()):
            if old not in workers and nanny in nannies:
                del pending[old]
                _restarting.pop(old, None)
        if pending:
            time.sleep(0.05)
    for old in pending:  # not back in time: do not wait for them again
        _restarting.pop(old, None)
