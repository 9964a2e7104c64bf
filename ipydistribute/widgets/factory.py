"""Choosing the view of a run for the frontend at hand (``--view full|progress|none``)."""

from __future__ import annotations

from typing import Any

from ..core.run import Run
from .live import LiveDisplay, RunViewProtocol


def in_kernel(shell: Any) -> bool:
    """Whether a Jupyter frontend can show widgets (a kernel), not a terminal IPython."""
    return getattr(shell, "kernel", None) is not None


def dashboard_link(run: Run) -> str | None:
    """Dask's dashboard for the run's client, from ``distributed.dashboard.link`` (so it
    goes through jupyter-server-proxy behind JupyterHub when that setting says so)."""
    try:
        link = run.client.dashboard_link
    except Exception:  # no dashboard on this scheduler (bokeh missing, or turned off)
        return None
    return str(link) if link else None


def gpu_reason() -> str | None:
    """Why the current cluster has no GPU metrics, when it has none (None: no reason known)."""
    from ..core import cluster
    from ..core.gpus import GPUState

    handle, _ = cluster.current(start=False)
    if handle is None or handle.gpu_state is GPUState.AVAILABLE:
        return None
    return str(handle.gpu_state.value)


def make_view(run: Run, kind: str, shell: Any, force: bool = False) -> RunViewProtocol | None:
    """The view of ``run``: None for ``none`` or a terminal (unless ``force``)."""
    if kind == "none" or not (force or in_kernel(shell)):
        return None
    if kind == "progress":
        from .progress import ProgressView

        return ProgressView(run.label)
    from .runview import RunView

    return RunView(run, dashboard=dashboard_link(run), gpu_reason=gpu_reason())


def live_display(run: Run, kind: str, shell: Any) -> LiveDisplay:
    """Show ``run`` (or only forward its output, with ``kind='none'``) until it ends."""
    parent = shell.get_parent() if in_kernel(shell) and hasattr(shell, "get_parent") else None
    return LiveDisplay(run, make_view(run, kind, shell), parent).start()
