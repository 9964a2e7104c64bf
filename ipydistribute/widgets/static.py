"""The static picture of a run: HTML from Jinja2 templates (autoescaped) around one PNG.

It replaces the live view when the run ends, so a notebook opened without a kernel, converted
by nbconvert or shown on GitHub still shows the final graph, the progress per group, the task
stream, the workers and the summary. Its size is bounded: at most a few hundred graph nodes
(else one per group) and the last :data:`STATIC_BARS` task stream bars.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from dask.utils import format_bytes
from markupsafe import Markup

from ..core.cluster_snapshot import WorkerRow
from ..core.monitor import STATES, Bar, Snapshot
from .graph_layout import Graph
from .palette import RUN_COLOURS, STATE_COLOURS, STATE_WORDS
from .picture import PANEL_H, PANEL_W, run_picture, styles_of
from .summary import RunFigures
from .templates import render

#: Task stream bars drawn in the static picture (the most recent ones).
STATIC_BARS = 2_000


def gpu_text(w: WorkerRow, reason: str | None = None) -> str:
    """What the resources row says about a worker's GPU: figures, or why there are none."""
    if w.gpu_utilization is not None or w.gpu_memory_used is not None:
        text = w.gpu_utilization_text or "? %"
        return text + (f" · {w.gpu_memory_text}" if w.gpu_memory_text else "")
    if w.gpu == "simulated":
        return "simulated GPU: no device, no metrics"
    if w.gpu == "real":
        return f"GPU metrics off: {reason or 'the worker reports no NVML metrics'}"
    return "no GPU"


def resources_context(snapshot: Snapshot | None, gpu_reason: str | None) -> dict[str, Any]:
    workers = snapshot.workers if snapshot is not None else []
    return {"workers": workers, "filesize": lambda n: format_bytes(int(n)),
            "gpu_text": lambda w: gpu_text(w, gpu_reason),
            "unavailable": snapshot.unavailable if snapshot is not None else None}


def groups_context(snapshot: Snapshot | None) -> dict[str, Any]:
    groups = sorted(snapshot.groups, key=lambda g: (g.level, g.name)) if snapshot else []
    styles = styles_of(snapshot)
    return {"groups": groups, "states": STATES, "colours": STATE_COLOURS, "words": STATE_WORDS,
            "group_colours": {name: style.colour for name, style in styles.items()}}


def header_context(f: RunFigures, dashboard: str | None) -> dict[str, Any]:
    return {"f": f, "run_colour": RUN_COLOURS.get(f.state, "#6b7280"), "dashboard": dashboard}


def picture_img(png: bytes) -> Markup:
    """The PNG as an ``<img>`` inside HTML: kept by the sanitizer of untrusted notebooks."""
    data = base64.b64encode(png).decode("ascii")
    return Markup(f'<img class="ipd-picture" alt="task graph and task stream" width="{2 * PANEL_W}" '
                  f'height="{PANEL_H}" src="data:image/png;base64,{data}"/>')


def run_png(snapshot: Snapshot | None, graph: Graph, bars: Sequence[Bar], wall: float | None) -> bytes:
    """The graph and the task stream of a run as one PNG (see :mod:`.picture`)."""
    lanes = len(snapshot.lanes) if snapshot is not None else 0
    return run_picture(graph, list(bars)[-STATIC_BARS:], lanes, styles_of(snapshot), wall)


def run_html(f: RunFigures, snapshot: Snapshot | None, png: bytes, dashboard: str | None,
             gpu_reason: str | None) -> str:
    """The whole static picture of a run, as HTML (the graph and stream as an ``<img>``)."""
    return render("run.html.j2", picture=picture_img(png),
                  **header_context(f, dashboard), **groups_context(snapshot),
                  **resources_context(snapshot, gpu_reason))
