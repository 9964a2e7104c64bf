"""The current cluster: the embedded local one, a remote scheduler, or any Dask cluster manager.

Whichever it is, its ``distributed.Client`` is Dask's default client, so Dask arrays, dataframes
and ``dask.compute`` in the same notebook run on it too. Everything here is plain Python: the
``%cluster`` magic and the cluster widget only call these functions.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

import dask
import psutil
from distributed import Client, SpecCluster
from distributed.core import Status
from distributed.deploy.cluster import Cluster

from . import config, wire
from .dask_logs import keep_out_of_cells
from .embedded_servers import STREAM_SEND_INTERVAL, EmbeddedNanny, EmbeddedScheduler
from .errors import SpecError, shorten
from .gpus import SIMULATED_ENV, GPUInfo, GPUState, detect_gpus
from .security import describe, needs_tls, tls_security

__all__ = [
    "ClusterHandle", "SIMULATED_ENV", "adapt", "chosen", "connect", "current", "new", "restart", "scale",
    "scale_blocked", "start_local", "stop", "use",
]

LOOPBACK = "127.0.0.1"
WORKER_PRELOADS = ["ipydistribute.core.worker_setup", "ipydistribute.core.gpus"]
WORKER_PRELOAD = WORKER_PRELOADS[0]
#: Dask's own default for ``distributed.dashboard.link``: only that one is replaced on JupyterHub.
_DASK_DEFAULT_LINK = "{scheme}://{host}:{port}/status"
_HUB_LINK = "{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status"


class ManagerControl(Protocol):
    """Scaling and closing of a cluster manager, for managers that need more than Dask's calls."""

    def scale(self, n: int) -> None: ...

    def adapt(self, minimum: int, maximum: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class ClusterHandle:
    """The cluster the notebook uses now and how it came to be."""

    client: Client
    cluster: Any | None  # the cluster manager when we (or the user) started one
    # "local" (embedded), "remote" (connected), "manager" (%cluster new), "gateway", "user" (their
    # Client), "worker" (inside an item: the worker's client)
    kind: str
    gpu_state: GPUState = GPUState.DISABLED
    gpus: list[GPUInfo] = field(default_factory=list)
    simulated_gpus: int = 0
    adaptive: tuple[int, int] | None = None  # (minimum, maximum) while adaptive scaling is on
    requested: int = 0  # workers last asked of the cluster manager by scale
    # how the manager is scaled and closed when its own methods are not enough (a gateway's:
    # core/gateway.py); None: the manager's own scale, adapt and close
    control: ManagerControl | None = None

    @property
    def owned(self) -> bool:
        """Whether closing the notebook's session should close the cluster too."""
        if self.kind == "gateway":  # unless it was kept (--keep)
            return bool(getattr(self.cluster, "shutdown_on_close", True))
        return self.kind in ("local", "manager")

    @property
    def address(self) -> str:
        if not getattr(self, "_address", None):  # remembered: a closed client forgets it
            try:
                self._address = str(self.client.scheduler.address)
            except AttributeError:
                return "?"
        return self._address

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link) if self.client.dashboard_link else None
        except Exception:  # no dashboard (bokeh missing, or the scheduler runs without one)
            return None

    def alive(self) -> bool:
        return self.client.status == "running"


#: How often the embedded cluster copies its description to its scheduler (the dashboard's cluster
#: info; Dask: every second), a message through the kernel's event loop each time.
CLUSTER_INFO_SYNC_SECONDS = 5

_current: ClusterHandle | None = None
_lock = threading.RLock()


class EmbeddedCluster(SpecCluster):
    """A local cluster of worker processes, every port on the loopback address.

    ``scale`` and adaptive scaling add and remove CPU workers (named ``cpu-N``) only: the GPU
    workers (one per device, or simulated) stay as started.
    """

    def _new_worker_name(self, worker_number: int) -> str:
        return f"cpu-{worker_number}"

    worker_spec: dict[Any, dict[str, Any]]

    def _fixed(self) -> list[Any]:
        return [name for name in self.worker_spec if not str(name).startswith("cpu-")]

    def scale(self, n: int = 0, memory: Any = None, cores: Any = None) -> Any:
        if self.status in (Status.closing, Status.closed):  # close() scales to 0: let it
            return super().scale(n, memory, cores)
        fixed = self._fixed()
        # SpecCluster.scale drops the last specs first: put the GPU workers in front.
        self.worker_spec = {**{k: self.worker_spec[k] for k in fixed},
                            **{k: v for k, v in self.worker_spec.items() if k not in fixed}}
        return super().scale(max(n, len(fixed)), memory, cores)

    async def scale_down(self, workers: Any) -> None:
        fixed = set(self._fixed())
        await super().scale_down([w for w in workers if w not in fixed])

    def _update_worker_status(self, op: str, msg: Any) -> None:
        """Keep the nanny of a worker that left while its nanny still runs: the nanny restarts it.

        SpecCluster closes the nanny of a worker whose name is not back 15 s after it left
        (``distributed.deploy.lost-worker-timeout``, meant for a job that died). A worker that a
        stop or ``--timeout`` restarted is back in 1-5 s, but a check due from an earlier restart
        can fall in that gap: 6 restarts 4 s apart lost both workers of a cluster for good.
        """
        if op == "remove":
            name = self.scheduler_info["workers"].get(msg, {}).get("name")
            nanny = self.workers.get(name)
            if nanny is not None and nanny.status == Status.running:
                Cluster._update_worker_status(self, op, msg)  # SpecCluster's without its timer
                return
        super()._update_worker_status(op, msg)


def _nanny(threads: int, memory_limit: int | str, resources: dict[str, float] | None = None,
           env: dict[str, str] | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "nthreads": threads,
        "memory_limit": memory_limit,
        "host": LOOPBACK,
        "dashboard_address": f"{LOOPBACK}:0",
        "preload": list(WORKER_PRELOADS),
        "silence_logs": logging.WARNING,
        # Dotted keys: the Nanny merges this into the whole config only one level deep.
        "config": _dotted(config.get("embedded-worker-config") or {}),
    }
    if resources:
        options["resources"] = resources
    if env:
        options["env"] = env
    return {"cls": EmbeddedNanny, "options": options}


def _dotted(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _memory_per_worker(memory_limit: str | int | None, count: int) -> int | str:
    if memory_limit not in (None, "auto"):
        return memory_limit  # type: ignore[return-value]
    return int(psutil.virtual_memory().total / max(count, 1))


def start_local(workers: int | None = None, threads: int = 1, memory_limit: str | int | None = "auto",
                gpus: str | int = "auto", simulate_gpus: int = 0,
                announce: Callable[[str], None] | None = None) -> ClusterHandle:
    """Start the embedded cluster: worker processes on this machine, bound to 127.0.0.1.

    Parameters
    ----------
    workers
        CPU workers (default: the cores not given to GPU workers, at least 1).
    threads
        Threads per CPU worker.
    memory_limit
        Per worker, like ``"4GiB"``; ``"auto"`` shares the machine's memory among the workers.
    gpus
        ``"auto"`` gives each GPU found through NVML its own worker (resource ``GPU=1``, its own
        ``CUDA_VISIBLE_DEVICES``); a number uses that many of them; ``"none"`` none.
    simulate_gpus
        Workers named ``simgpu-N`` that declare ``GPU=1`` without a GPU, for teaching; they
        carry ``IPYDISTRIBUTE_SIMULATED_GPU=1`` and are shown as simulated.
    announce
        Called with one line before the workers start (a few seconds): the notebook shows it.
    """
    if threads < 1:
        raise SpecError(f"--threads must be at least 1, not {threads}")
    if simulate_gpus < 0:
        raise SpecError(f"--simulate-gpus must be 0 or more, not {simulate_gpus}")
    if workers is not None and workers < 0:
        raise SpecError(f"--workers must be 0 or more, not {workers}")
    gpu_state, found = _pick_gpus(gpus)
    cores = os.cpu_count() or 1
    n_cpu = workers if workers is not None else max(1, cores - len(found) - simulate_gpus)
    total = n_cpu + len(found) + simulate_gpus
    if total == 0:
        raise SpecError("that cluster would have no worker: ask for --workers 1 or more")
    if announce is not None:
        announce(f"Starting a local Dask cluster ({total} worker{'s' if total != 1 else ''})...")
    memory = _memory_per_worker(memory_limit, total)
    specs: dict[str, Any] = {f"cpu-{i}": _nanny(threads, memory) for i in range(n_cpu)}
    for gpu in found:
        specs[f"gpu-{gpu.index}"] = _nanny(1, memory, {"GPU": 1}, {"CUDA_VISIBLE_DEVICES": str(gpu.index)})
    for i in range(simulate_gpus):
        specs[f"simgpu-{i}"] = _nanny(1, memory, {"GPU": 1}, {SIMULATED_ENV: "1", "CUDA_VISIBLE_DEVICES": ""})
    scheduler = {"cls": EmbeddedScheduler, "options": {"host": LOOPBACK, "port": 0,
                                                "dashboard_address": f"{LOOPBACK}:0"}}
    configure_dashboard_link()
    keep_out_of_cells()  # the embedded scheduler and nannies log in this process: not into cells
    with _lock:
        stop()
        cluster = EmbeddedCluster(workers=specs, scheduler=scheduler, worker=_nanny(threads, memory),
                                  name="ipydistribute", silence_logs=logging.WARNING,
                                  scheduler_sync_interval=CLUSTER_INFO_SYNC_SECONDS)
        try:
            # Results come straight from the workers (Dask's default passes them through the
            # scheduler, here in this same process: 16 arrays of 2 MB, 102 -> 49 ms).
            client = Client(cluster, set_as_default=True, direct_to_workers=True)
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


def configure_dashboard_link() -> None:
    """Behind JupyterHub, point dashboard links through ``jupyter-server-proxy``.

    Dask formats ``distributed.dashboard.link`` with the environment, so the hub's
    ``JUPYTERHUB_SERVICE_PREFIX`` (``/user/NAME/``) gives ``/user/NAME/proxy/PORT/status``,
    which the browser can reach where ``127.0.0.1:PORT`` could not. A link the user configured
    is left alone.
    """
    if os.environ.get("JUPYTERHUB_SERVICE_PREFIX") and \
            dask.config.get("distributed.dashboard.link", default=_DASK_DEFAULT_LINK) == _DASK_DEFAULT_LINK:
        dask.config.set({"distributed.dashboard.link": _HUB_LINK})


def connect(address: str, timeout: float | None = None, security: Any = None, *,
            tls_ca_file: str | None = None, tls_cert: str | None = None,
            tls_key: str | None = None) -> ClusterHandle:
    """Connect to a running scheduler.

    Parameters
    ----------
    address
        ``tcp://host:8786``, or ``tls://host:8786`` for a secured scheduler.
    timeout
        Seconds to wait for the scheduler (default: ``ipydistribute.connect-timeout``, 10 s).
    security
        A ``distributed.security.Security``; or give the certificate paths instead.
    tls_ca_file, tls_cert, tls_key
        Paths of the CA certificate, this client's certificate and its key (PEM). Without them,
        a ``tls://`` address uses Dask's configuration (``distributed.comm.tls.*``).
    """
    if "://" not in address and ":" not in address:
        raise SpecError(f"{address!r} is not a scheduler address: write it like tcp://host:8786")
    seconds = float(timeout) if timeout is not None else config.seconds("connect-timeout")
    if seconds <= 0:
        raise SpecError(f"--timeout must be more than 0 seconds, not {seconds:g}")
    given_paths = any(p is not None for p in (tls_ca_file, tls_cert, tls_key))
    if given_paths and security is not None:
        raise SpecError("give either security= or the --tls-* paths, not both")
    if given_paths and not needs_tls(address):
        raise SpecError(f"--tls-* options need a tls:// address, not {address}")
    if security is None and needs_tls(address):
        security = tls_security(tls_ca_file, tls_cert, tls_key)
    if needs_tls(address) and not (getattr(security, "tls_client_cert", None) and security.tls_ca_file):
        # Dask schedulers ask every client for a certificate signed by their CA (mutual TLS)
        raise SpecError(f"{address} needs this client's certificate ({describe(security)}): give --tls-ca-file, "
                        "--tls-cert and --tls-key, or set distributed.comm.tls.* in Dask's configuration")
    configure_dashboard_link()
    try:
        client = Client(address, timeout=seconds, security=security, set_as_default=True)
    except (OSError, TimeoutError, TypeError) as exc:  # TypeError: Dask found no usable TLS context
        raise SpecError(_connect_failure(address, seconds, security, exc)) from None
    with _lock:
        stop()
        return _set_current(ClusterHandle(client, None, "remote"))


def _connect_failure(address: str, seconds: float, security: Any, exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if needs_tls(address) and any(word in text for word in ("SSL", "TLS", "certificate", "ssl_context")):
        return (f"the scheduler at {address} refused this client's TLS credentials ({describe(security)}): "
                f"give --tls-ca-file, --tls-cert and --tls-key signed by the scheduler's CA "
                f"[{shorten(text, 160)}]")
    hint = "is it running, and is the address right?"
    if address.startswith("tcp://") and "reset by peer" in text:
        hint = f"a TLS scheduler resets plain TCP connections: try tls://{address[len('tcp://'):]} with certificates"
    return (f"cannot reach the scheduler at {address} within {seconds:g} s ({type(exc).__name__}: "
            f"{shorten(text, 160)}); {hint}")


def new(import_path: str, **kwargs: Any) -> ClusterHandle:
    """Start any Dask cluster manager by import path, e.g. ``dask_jobqueue.SLURMCluster``.

    ``kwargs`` go to the class as they are; the notebook owns the cluster (``stop`` closes it).
    """
    module_name, _, class_name = import_path.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in import_path.split(".")):
        raise SpecError(f"{import_path!r} is not an import path: write it like dask_jobqueue.SLURMCluster")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or module_name).split(".")[0]
        package = missing.replace("_", "-")
        raise SpecError(f"cannot import {module_name} (no module named {missing!r}): "
                        f"install it with `pip install {package}`") from None
    cls = getattr(module, class_name, None)
    if cls is None or not callable(cls):
        raise SpecError(f"{module_name} has no class {class_name}: check the spelling")
    configure_dashboard_link()
    try:
        cluster = cls(**kwargs)
    except TypeError as exc:
        raise SpecError(f"{import_path}(...) rejected its options: {shorten(str(exc), 200)}") from None
    except Exception as exc:  # the manager's own failure (a worker that did not start, a bad queue...)
        cause = f" (because {type(exc.__cause__).__name__}: {shorten(str(exc.__cause__), 160)})" \
            if exc.__cause__ is not None else ""
        raise SpecError(f"{import_path}(...) failed to start: {type(exc).__name__}: "
                        f"{shorten(str(exc), 160)}{cause}") from None
    try:
        client = Client(cluster, set_as_default=True)  # Dask's way to results: its workers may be out of reach
    except BaseException:
        cluster.close()
        raise
    with _lock:
        stop()
        return _set_current(ClusterHandle(client, cluster, "manager"))


def current(start: bool = True, announce: Callable[[str], None] | None = None,
            ) -> tuple[ClusterHandle | None, bool]:
    """The cluster to use now, and whether it was just started.

    Order: inside an item on a worker, that worker's client; the one set by
    ``start``/``connect``; a ``distributed.Client`` the user made;
    ``DASK_SCHEDULER_ADDRESS``; else, when ``start``, a new embedded local cluster.
    """
    from .nesting import in_task, task_client

    if in_task():  # inside an item: the cluster that runs it, never a new one on the worker
        return ClusterHandle(task_client(), None, "worker"), False
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
        return start_local(announce=announce), True


def chosen() -> ClusterHandle | None:
    """The cluster set now (by start, connect, use or a run), without looking further or starting one."""
    with _lock:
        return _current


def use(target: Any) -> ClusterHandle | None:
    """Make ``target`` the cluster that ``%%distribute`` and :func:`distribute` use from now on.

    ``target`` is a ``distributed.Client``, a Dask cluster manager (``LocalCluster``,
    ``SLURMCluster``...), a scheduler address, a handle returned by this module, or None to
    forget the current one (the next run then starts the embedded cluster). The cluster before
    is left running: this notebook did not necessarily start it, and it may be used again.
    """
    if target is None or isinstance(target, ClusterHandle):
        with _lock:
            return _set_current(target)
    if isinstance(target, str):
        return connect(target)
    if isinstance(target, Client):
        if target.status != "running":
            raise SpecError(f"that client is {target.status}: make a new one, or `%cluster connect ADDRESS`")
        handle = ClusterHandle(target, getattr(target, "cluster", None), "user")
    elif hasattr(target, "scheduler_address"):  # any cluster manager
        handle = ClusterHandle(Client(target, set_as_default=True), target, "user")
    else:
        raise SpecError(f"use() takes a distributed.Client, a Dask cluster, a scheduler address or None, "
                        f"not a {type(target).__name__}")
    with _lock:
        return _set_current(handle)


@overload
def _set_current(handle: ClusterHandle) -> ClusterHandle: ...
@overload
def _set_current(handle: None) -> None: ...
def _set_current(handle: ClusterHandle | None) -> ClusterHandle | None:
    global _current
    if handle is not None:  # use(None) clears the current cluster
        _send_sooner(handle)
    _current = handle
    return handle


#: Seconds the client holds a message to the scheduler after its previous one (Dask: 10 ms);
#: to the embedded cluster's scheduler it sends at once, as that cluster's servers do.
CLIENT_SEND_INTERVAL = 0.002


def _send_sooner(handle: ClusterHandle) -> None:
    """Let the client batch its messages to the scheduler over 2 ms, as Dask's workers do, or
    not at all to the embedded scheduler (``core/embedded_servers.py``).

    A run talks in bursts (the probe, then the batches and the reduction); Dask's client holds a
    message for up to 10 ms after its previous one, a wait that each of a short run's round
    trips paid (10,000 tiny items: about a quarter of the run). Dask has no setting for it.
    """
    stream = getattr(handle.client, "scheduler_comm", None)
    if stream is not None and isinstance(getattr(stream, "interval", None), float):
        stream.interval = STREAM_SEND_INTERVAL if handle.kind == "local" else CLIENT_SEND_INTERVAL


def _require() -> ClusterHandle:
    handle, _ = current(start=False)
    if handle is None:
        raise SpecError("there is no cluster: start one with `%cluster start` or `%cluster connect ADDRESS`")
    return handle


def scale_blocked(handle: ClusterHandle) -> str | None:
    """Why ``scale``/``adapt`` cannot act on this cluster, or None when they can."""
    if handle.cluster is None:
        return (f"the cluster at {handle.address} was started elsewhere: scale it with the tool that "
                "started it (this notebook only connected)")
    if not callable(getattr(handle.cluster, "scale", None)):
        return f"{type(handle.cluster).__name__} cannot be scaled"
    return None


def scale(n: int) -> ClusterHandle:
    """Ask for ``n`` workers (adaptive scaling stops). The embedded cluster keeps its GPU workers."""
    if n < 0:
        raise SpecError(f"scale takes a number of workers of 0 or more, not {n}")
    handle = _require()
    reason = scale_blocked(handle)
    if reason:
        raise SpecError(f"cannot scale: {reason}")
    adaptive = getattr(handle.cluster, "_adaptive", None)  # Dask keeps the running Adaptive there
    if adaptive is not None:
        adaptive.stop()
    handle.adaptive = None
    handle.requested = n
    manager: Any = handle.cluster
    if handle.control is not None:
        handle.control.scale(n)
    else:
        manager.scale(n)
    return handle


def adapt(minimum: int, maximum: int) -> ClusterHandle:
    """Let Dask add and remove workers between ``minimum`` and ``maximum`` as the load asks."""
    if minimum < 0 or maximum < minimum or maximum < 1:
        raise SpecError(f"adapt takes MIN MAX with 0 <= MIN <= MAX and MAX >= 1, not {minimum} {maximum}")
    handle = _require()
    reason = scale_blocked(handle) or (None if callable(getattr(handle.cluster, "adapt", None))
                                       else f"{type(handle.cluster).__name__} cannot adapt")
    if reason:
        raise SpecError(f"cannot adapt: {reason}")
    manager: Any = handle.cluster
    if handle.control is not None:
        handle.control.adapt(minimum, maximum)
    else:
        manager.adapt(minimum=minimum, maximum=maximum)
    handle.adaptive = (minimum, maximum)
    return handle


#: How long a run waits for the first worker of a cluster that is starting them (jobs may queue).
FIRST_WORKER_TIMEOUT = 300.0


def await_first_worker(client: Client, timeout: float = FIRST_WORKER_TIMEOUT) -> bool:
    """Whether a worker arrived for a run on the current cluster, which had none but is getting some.

    A cluster manager starts workers after ``scale`` returns (a Slurm job, a gateway worker), so a
    cell right after ``%cluster gateway --workers 2`` finds none yet: it waits for the first. An
    adaptive cluster starts workers only for tasks waiting in the scheduler, and a run counts the
    workers' threads before it submits any: a placeholder task asks for the first one.
    """
    with _lock:
        handle = _current
    if handle is None or handle.client is not client or not (handle.adaptive or handle.requested):
        return False
    print(f"waiting for the cluster's first worker (up to {timeout:g} s)...", flush=True)
    placeholder = client.submit(_nothing, pure=False) if handle.adaptive else None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        return False
    finally:
        if placeholder is not None:
            placeholder.release()
    return True


def _nothing() -> None:
    return None


def restart(timeout: float | None = None) -> ClusterHandle:
    """Restart every worker process: their memory, and the names ``%%distribute --all`` stored, are gone."""
    from .task import reset_worker_namespace

    handle = _require()
    # A worker without a nanny is not restarted as a process: clear what --all left there first.
    with contextlib.suppress(Exception):
        handle.client.run(reset_worker_namespace)
    try:
        handle.client.restart(timeout=timeout if timeout is not None else "60s")
    except (TimeoutError, OSError) as exc:
        raise SpecError(f"the workers did not all come back after the restart ({type(exc).__name__}: "
                        f"{shorten(str(exc), 160)}); check `%cluster status`") from None
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
        if handle.control is not None:  # a kept gateway cluster too: that only drops this notebook's connection
            handle.control.close()
        elif handle.owned and handle.cluster is not None:
            handle.cluster.close()
            wire.drop_handed()


# Closes the embedded cluster when the kernel shuts down or restarts (the kernel process exits).
atexit.register(stop)
