"""The current cluster: the embedded local one, a remote scheduler, or any Dask cluster manager.

Whichever it is, its ``distributed.Client`` is Dask's default client, so Dask arrays, dataframes
and ``dask.compute`` in the same notebook run on it too.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import psutil
from distributed import Client, Nanny, Scheduler, SpecCluster

from .errors import SpecError
from .gpus import GPUInfo, GPUState, detect_gpus

LOOPBACK = "127.0.0.1"
WORKER_PRELOAD = "ipydistribute.core.worker_setup"
SIMULATED_ENV = "IPYDISTRIBUTE_SIMULATED_GPU"


@dataclass
class ClusterHandle:
    """The cluster the notebook uses now and how it came to be."""

    client: Client
    cluster: Any | None  # the cluster manager when we (or the user) started one
    kind: str  # "local" (embedded), "remote" (connected), "manager" (%cluster new), "user" (their Client)
    gpu_state: GPUState = GPUState.DISABLED
    gpus: list[GPUInfo] = field(default_factory=list)
    simulated_gpus: int = 0

    @property
    def owned(self) -> bool:
        """Whether closing the notebook's session should close the cluster too."""
        return self.kind in ("local", "manager")

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link) if self.client.dashboard_link else None
        except Exception:  # no dashboard (bokeh missing, or the scheduler runs without one)
            return None

    def alive(self) -> bool:
        return self.client.status == "running"


_current: ClusterHandle | None = None
_lock = threading.RLock()


class EmbeddedCluster(SpecCluster):
    """A local cluster of worker processes, every port on the loopback address.

    New workers from ``scale`` are CPU workers named ``cpu-N``.
    """

    def _new_worker_name(self, worker_number: int) -> str:
        return f"cpu-{worker_number}"


def _nanny(threads: int, memory_limit: int | str, resources: dict[str, float] | None = None,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "nthreads": threads,
        "memory_limit": memory_limit,
        "host": LOOPBACK,
        "dashboard_address": f"{LOOPBACK}:0",
        "preload": [WORKER_PRELOAD],
        "silence_logs": logging.WARNING,
    }
    if resources:
        options["resources"] = resources
    if env:
        options["env"] = env
    return {"cls": Nanny, "options": options}


def _memory_per_worker(memory_limit: str | int | None, count: int) -> int | str:
    if memory_limit not in (None, "auto"):
        return memory_limit  # type: ignore[return-value]
    return int(psutil.virtual_memory().total / max(count, 1))


def start_local(workers: int | None = None, threads: int = 1, memory_limit: str | int | None = "auto",
                gpus: str | int = "auto", simulate_gpus: int = 0) -> ClusterHandle:
    """Start the embedded cluster: worker processes on this machine, bound to 127.0.0.1.

    ``gpus``: ``"auto"`` gives each GPU found through NVML its own worker (resource ``GPU=1``,
    its own ``CUDA_VISIBLE_DEVICES``); a number uses that many of them; ``"none"`` none.
    ``simulate_gpus`` adds workers that declare ``GPU=1`` without a GPU, for teaching.
    ``workers`` is the number of CPU workers (default: the cores not given to GPU workers).
    """
    if threads < 1:
        raise SpecError(f"--threads must be at least 1, not {threads}")
    if simulate_gpus < 0:
        raise SpecError(f"--simulate-gpus must be 0 or more, not {simulate_gpus}")
    gpu_state, found = _pick_gpus(gpus)
    cores = os.cpu_count() or 1
    n_cpu = workers if workers is not None else max(1, cores - len(found) - simulate_gpus)
    if n_cpu < 0:
        raise SpecError(f"--workers must be 0 or more, not {n_cpu}")
    total = n_cpu + len(found) + simulate_gpus
    if total == 0:
        raise SpecError("that cluster would have no worker: ask for --workers 1 or more")
    memory = _memory_per_worker(memory_limit, total)
    specs: dict[str, Any] = {f"cpu-{i}": _nanny(threads, memory) for i in range(n_cpu)}
    for gpu in found:
        specs[f"gpu-{gpu.index}"] = _nanny(1, memory, {"GPU": 1}, {"CUDA_VISIBLE_DEVICES": str(gpu.index)})
    for i in range(simulate_gpus):
        specs[f"simgpu-{i}"] = _nanny(1, memory, {"GPU": 1}, {SIMULATED_ENV: "1", "CUDA_VISIBLE_DEVICES": ""})
    scheduler = {"cls": Scheduler, "options": {"host": LOOPBACK, "port": 0,
                                                "dashboard_address": f"{LOOPBACK}:0"}}
    with _lock:
        stop()
        cluster = EmbeddedCluster(workers=specs, scheduler=scheduler, worker=_nanny(threads, memory),
                                  name="ipydistribute", silence_logs=logging.WARNING)
        try:
            client = Client(cluster, set_as_default=True)
            client.wait_for_workers(total, timeout=120)
        except BaseException:
            cluster.close()
            raise
        return _set_current(ClusterHandle(client, cluster, "local", gpu_state, found, simulate_gpus))


def _pick_gpus(gpus: str | int) -> tuple[GPUState, list[GPUInfo]]:
    if gpus in ("none", 0, "0"):
        return GPUState.DISABLED, []
    state, found = detect_gpus()
    if gpus == "auto":
        return state, found
    try:
        count = int(gpus)
    except (TypeError, ValueError):
        raise SpecError(f"--gpus takes auto, none or a number, not {gpus!r}") from None
    if count < 0:
        raise SpecError(f"--gpus must be 0 or more, not {count}")
    if count > len(found):
        raise SpecError(f"--gpus {count} asks for more GPUs than this machine has ({len(found)}: "
                        f"{state.value}); use --simulate-gpus {count} to practise without them")
    return state, found[:count]


def connect(address: str, timeout: float = 10, security: Any = None) -> ClusterHandle:
    """Connect to a running scheduler (``tcp://host:8786`` or ``tls://...`` with ``security``)."""
    if "://" not in address and ":" not in address:
        raise SpecError(f"{address!r} is not a scheduler address: write it like tcp://host:8786")
    try:
        client = Client(address, timeout=timeout, security=security, set_as_default=True)
    except (OSError, TimeoutError) as exc:
        raise SpecError(f"cannot reach the scheduler at {address} within {timeout:g} s "
                        f"({type(exc).__name__}: {_first_line(exc)}); is it running, and is the address right?") from None
    with _lock:
        stop()
        return _set_current(ClusterHandle(client, None, "remote"))


def new(import_path: str, **kwargs: Any) -> ClusterHandle:
    """Start any Dask cluster manager by import path, e.g. ``dask_jobqueue.SLURMCluster``."""
    module_name, _, class_name = import_path.rpartition(".")
    if not module_name:
        raise SpecError(f"{import_path!r} is not an import path: write it like dask_jobqueue.SLURMCluster")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.split(".")[0].replace("_", "-")
        raise SpecError(f"cannot import {module_name}: install it with `pip install {package}`") from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SpecError(f"{module_name} has no {class_name}")
    cluster = cls(**kwargs)
    client = Client(cluster, set_as_default=True)
    with _lock:
        stop()
        return _set_current(ClusterHandle(client, cluster, "manager"))


def current(start: bool = True) -> tuple[ClusterHandle | None, bool]:
    """The cluster to use now, and whether it was just started.

    Order: the one set by ``start``/``connect``; a ``distributed.Client`` the user made;
    ``DASK_SCHEDULER_ADDRESS``; else, when ``start``, a new embedded local cluster.
    """
    with _lock:
        if _current is not None and _current.alive():
            return _current, False
        try:
            user_client = Client.current(allow_global=True)
        except ValueError:
            user_client = None
        if user_client is not None and user_client.status == "running":
            return _set_current(ClusterHandle(user_client, getattr(user_client, "cluster", None), "user")), False
        address = os.environ.get("DASK_SCHEDULER_ADDRESS")
        if address:
            return connect(address), True
        if not start:
            return None, False
        return start_local(), True


def _set_current(handle: ClusterHandle) -> ClusterHandle:
    global _current
    _current = handle
    return handle


def stop() -> None:
    """Close the current cluster if this notebook started it; disconnect from it otherwise."""
    global _current
    with _lock:
        handle, _current = _current, None
    if handle is None:
        return
    try:
        handle.client.close()
    finally:
        if handle.owned and handle.cluster is not None:
            handle.cluster.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


atexit.register(stop)
