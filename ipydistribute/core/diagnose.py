"""What the cluster can do for a run, and why a run was lost: the workers that qualify for its
tasks, and one-line explanations of dead workers, killed tasks and vanished schedulers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dask.utils import format_bytes
from distributed import Client

from . import cluster as cluster_mod
from . import identity
from .errors import RunLostError, SpecError, safe_repr
from .ledger import Entry

if TYPE_CHECKING:
    from .options import RunOptions


def eligible_workers(client: Client, options: RunOptions, starting: bool = False) -> tuple[int, list[str]]:
    """Threads of the workers this run may use, and their addresses; fails at once when none
    qualifies, saying what to change. ``starting``: a run about to start waits for the first
    worker of a cluster that asked for workers (a gateway or adaptive cluster just created)."""
    info = identity.workers(client)
    if not info and starting and cluster_mod.await_first_worker(client):  # workers asked for, not there yet
        info = identity.workers(client)
    wanted = options.all_resources()
    chosen = []
    threads = 0
    for address, worker in info.items():
        if options.workers is not None and not worker_matches(address, worker, options.workers):
            continue
        have = worker.get("resources", {}) or {}
        if any(have.get(k, 0) < v for k, v in wanted.items()):
            continue
        chosen.append(address)
        threads += int(worker.get("nthreads", 1))
    if not info:
        raise SpecError("the cluster has no workers: add some with `%cluster scale N` or `%cluster start`")
    if not chosen:
        named = [a for a, w in info.items() if options.workers is not None
                 and worker_matches(a, w, options.workers)]
        if options.workers is not None and not named:
            known = ", ".join(sorted(str(w.get("name", a)) for a, w in info.items()))
            raise SpecError(f"no worker matches --workers {','.join(options.workers)}: the workers are {known}")
        if named:
            need = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
            raise SpecError(f"--workers {','.join(options.workers or [])} offer no {need}: drop --workers, "
                            "or name workers that have it")
        need = ", ".join(f"{k}={v:g}" for k, v in wanted.items())
        hint = "start GPU workers with `%cluster start --gpus auto` (or `--simulate-gpus N` to practise)" \
            if "GPU" in wanted else "start workers with `dask worker ADDRESS --resources \"NAME=N\"`"
        raise SpecError(f"no worker offers {need}: {hint}")
    return threads, chosen


def worker_matches(address: str, worker: dict[str, Any], wanted: list[str]) -> bool:
    names = {address, str(worker.get("name")), str(worker.get("host", ""))}
    return any(w in names for w in wanted)


def describe_items(entry: Entry | None) -> str:
    """``item #3 (0.5)`` or ``items #0 to #9 (first: 0)`` for the items of a task."""
    if entry is None or entry.role == "reduce":
        return "the reduction"
    item = safe_repr(entry.first_item, 60)
    if entry.count == 1:
        return f"item #{entry.start} ({item})"
    return f"items #{entry.start} to #{entry.start + entry.count - 1} (first: {item})"


def lost_error(client: Client, label: str, key: Any, entry: Entry | None, exc: BaseException | None) -> BaseException:
    """The error of a task that failed for another reason than an item's exception."""
    from distributed.scheduler import KilledWorker

    if not isinstance(exc, KilledWorker):
        return exc if exc is not None else RunLostError(f"{label}: task {key} failed")
    limit_bytes, attempts = killed_worker_facts(exc)
    if not limit_bytes:  # not carried by the exception: the workers' limit now
        limits = sorted({w.get("memory_limit", 0) for w in
                         identity.workers(client).values()} - {0})
        limit_bytes = limits[-1] if limits else 0
    limit = f" (memory limit {format_bytes(limit_bytes)} per worker)" if limit_bytes else ""
    return RunLostError(
        f"{label}: {describe_items(entry)} killed the workers that ran it{limit}, {attempts} times: "
        "it may use too much memory or crash the process; use smaller items or --batch 1, "
        "or workers with more memory")


def connection_lost(client: Client, label: str, exc: BaseException) -> RunLostError | None:
    """The run's error when ``exc`` says the scheduler went away in the middle of a call."""
    from distributed.comm import CommClosedError

    if not isinstance(exc, (CommClosedError, ConnectionError)):
        return None
    return RunLostError(f"{label} lost its connection to the scheduler ({type(exc).__name__}): the "
                        "cluster is gone; start a new one with `%cluster start`")


def cancelled_error(client: Client, label: str) -> RunLostError:
    """Why tasks of a run were cancelled although the run was not."""
    if client.status != "running":
        return RunLostError(f"{label} lost its connection to the scheduler ({client.status}): "
                            "the cluster is gone; start a new one with `%cluster start`")
    return RunLostError(f"{label}: the cluster cancelled its tasks (another client or a "
                        "restart of the cluster); run the cell again")


def workers_gone_error(label: str, cause: SpecError, open_items: list[int]) -> RunLostError:
    """Tasks restricted to workers (or resources) that no longer exist would wait forever."""
    what = (f"item #{open_items[0]}" + (f" and {len(open_items) - 1} more" if len(open_items) > 1 else "")
            if open_items else "its remaining tasks")
    return RunLostError(f"{label} cannot finish: {cause} (the workers it may use are gone); "
                        f"{what} were not done")


def killed_worker_facts(exc: BaseException) -> tuple[int, int]:
    """The last worker's memory limit and the number of attempts, as the scheduler saw them."""
    try:
        limit = int(getattr(exc.last_worker, "memory_limit", 0) or 0)  # type: ignore[attr-defined]
    except Exception:  # an older or differently pickled KilledWorker
        limit = 0
    try:
        attempts = int(exc.allowed_failures) + 1  # type: ignore[attr-defined]
    except Exception:
        import dask

        attempts = int(dask.config.get("distributed.scheduler.allowed-failures", 3)) + 1
    return limit, attempts
