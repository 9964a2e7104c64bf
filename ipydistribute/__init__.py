"""ipydistribute: ``%%distribute`` fans a notebook cell out over a Dask cluster.

Nothing is started at import, and nothing but this file is imported: the names below load their
module on first use. The first ``%%distribute`` (or :func:`distribute`) starts the embedded local
cluster when no other cluster is set.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "CellError": ".core.errors",
    "ItemFailure": ".core.errors",
    "RunLostError": ".core.errors",
    "SpecError": ".core.errors",
    "Run": ".core.run",
    "RunOptions": ".core.options",
    "KeptResults": ".core.kept",
    "seed_item": ".core.seeding",
    "detect_gpus": ".core.gpus",
    "distribute": ".core.api",  # the function itself: its typed signature is the one IDEs show
}

__all__ = [
    "CellError",
    "ItemFailure",
    "KeptResults",
    "Run",
    "RunLostError",
    "RunOptions",
    "SpecError",
    "adapt",
    "connect",
    "detect_gpus",
    "distribute",
    "gateway",
    "get_client",
    "load_ipython_extension",
    "restart",
    "scale",
    "seed_item",
    "start",
    "status",
    "stop",
    "unload_ipython_extension",
    "use",
]

if TYPE_CHECKING:
    from distributed import Client

    from .core.api import distribute
    from .core.errors import CellError, ItemFailure, RunLostError, SpecError
    from .core.gpus import detect_gpus
    from .core.kept import KeptResults
    from .core.options import RunOptions
    from .core.run import Run
    from .core.seeding import seed_item


def load_ipython_extension(shell: Any) -> None:
    from .extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from .extension import unload_ipython_extension as unload

    unload(shell)


def start(**options: Any) -> Client:
    """Start the embedded local cluster (see :func:`ipydistribute.core.cluster.start_local`)."""
    from .core.cluster import start_local

    _hook_kernel_shutdown()
    return start_local(**options).client


def _hook_kernel_shutdown() -> None:
    """In a kernel without ``%load_ext``: close the cluster when the kernel is asked to shut down."""
    import sys

    if "IPython" in sys.modules:
        from IPython import get_ipython

        from .extension.shutdown import install_shutdown_hook

        shell = get_ipython()
        if shell is not None:
            install_shutdown_hook(shell)


def connect(address: str, **options: Any) -> Client:
    """Connect to a running Dask scheduler (see :func:`ipydistribute.core.cluster.connect`)."""
    from .core.cluster import connect as connect_to

    return connect_to(address, **options).client


def gateway(address: str | None = None, **options: Any) -> Client:
    """Create (or ``connect=NAME`` to) a dask-gateway cluster (see :func:`ipydistribute.core.gateway.start`)."""
    from .core.gateway import start as start_gateway

    return start_gateway(address, **options).client


def use(target: object) -> Client | None:
    """Run on ``target`` from now on: a ``distributed.Client``, any Dask cluster manager, a
    scheduler address, or None to forget the current cluster. Returns its client (or None)."""
    from .core.cluster import use as use_cluster

    handle = use_cluster(target)
    return handle.client if handle is not None else None


def stop() -> None:
    """Stop the cluster this notebook started, or disconnect from a remote one."""
    from .core.cluster import stop as stop_cluster

    stop_cluster()


def scale(n: int) -> None:
    """Ask for ``n`` workers (see :func:`ipydistribute.core.cluster.scale`)."""
    from .core.cluster import scale as scale_to

    scale_to(n)


def adapt(minimum: int, maximum: int) -> None:
    """Let Dask scale the cluster between ``minimum`` and ``maximum`` workers."""
    from .core.cluster import adapt as adapt_between

    adapt_between(minimum, maximum)


def restart() -> None:
    """Restart every worker process (their memory and ``--all`` names are gone)."""
    from .core.cluster import restart as restart_workers

    restart_workers()


def status() -> Any:
    """The cluster widget in a notebook (a snapshot elsewhere); None without a cluster."""
    from .core.cluster import current
    from .core.cluster_snapshot import take

    handle, _ = current(start=False)
    if handle is None:
        return None
    try:
        from .widgets.cluster_widget import ClusterWidget
    except ImportError:  # ipywidgets missing: the plain snapshot still says everything
        return take(handle)
    return ClusterWidget(handle)


def get_client() -> Client:
    """The ``distributed.Client`` of the current cluster, starting the embedded one if needed."""
    from .core.cluster import current

    handle, _ = current()
    assert handle is not None
    return handle.client


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ipydistribute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
