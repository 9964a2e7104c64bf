"""The static picture of a run: HTML and SVG from Jinja2 templates (autoescaped).

It replaces the live view when the run ends, so a notebook opened without a kernel, converted
by nbconvert or shown on GitHub still shows the final graph, the progress per group, the task
stream, the workers and the summary. Its size is bounded: at most a few hundred graph nodes
(else one per group) and the last :data:`STATIC_BARS` task stream bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dask.utils import format_bytes
from markupsafe import Markup

from ..core.monitor import STATES, Bar, Snapshot, WorkerSnapshot
from .graph_layout import Graph
from .palette import RUN_COLOURS, STATE_COLOURS, STATE_WORDS, group_colour
from .summary import RunFigures
from .templates import render

#: Task stream bars drawn in the static picture (the most recent ones).
STATIC_BARS = 2_000
WIDTH, HEIGHT = 460, 240


def gpu_text(w: WorkerSnapshot, reason: str | None = None) -> str:
    """What the resources row says about a worker's GPU: figures, or why there are none."""
    if w.gpu:
        util = w.gpu.get("utilization")
        used, total = w.gpu.get("memory_used"), w.gpu.get("memory_total")
        text = f"{util:.0f} %" if isinstance(util, (int, float)) else "? %"
        if used is not None:
            text += f" · {format_bytes(int(used))}"
            if total:
                text += f" / {format_bytes(int(total))}"
        return text
    if w.has_gpu_resource:
        if w.simulated_gpu:
            return "simulated GPU: no device, no metrics"
        return f"GPU metrics off: {reason or 'the worker reports no NVML metrics'}"
    return "no GPU"


def resources_context(snapshot: Snapshot | None, gpu_reason: str | None) -> dict[str, Any]:
    workers = snapshot.workers if snapshot is not None else []
    return {"workers": workers, "filesize": lambda n: format_bytes(int(n)),
            "gpu_text": lambda w: gpu_text(w, gpu_reason),
            "unavailable": snapshot.unavailable if snapshot is not None else None}


def groups_context(snapshot: Snapshot | None) -> dict[str, Any]:
    groups = sorted(snapshot.groups, key=lambda g: (g.level, g.name)) if snapshot else []
    return {"groups": groups, "states": STATES, "colours": STATE_COLOURS, "words": STATE_WORDS}


def header_context(f: RunFigures, dashboard: str | None) -> dict[str, Any]:
    return {"f": f, "run_colour": RUN_COLOURS.get(f.state, "#6b7280"), "dashboard": dashboard}


def graph_svg(graph: Graph, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    pad_x, pad_y, top = 40, 12, 18

    def at(x: float, y: float) -> tuple[float, float]:
        px = pad_x + x * (width - 2 * pad_x - (90 if not graph.per_task else 0))
        py = top + pad_y + (1 - y) * (height - top - 2 * pad_y)
        return round(px, 1), round(py, 1)

    nodes = [(n, *at(n.x, n.y), round(n.size * 4, 1)) for n in graph.nodes]
    edges = [(*at(x0, y0), *at(x1, y1)) for x0, y0, x1, y1 in graph.edges]
    return Markup(render("_graph.svg.j2", graph=graph, nodes=nodes, edges=edges, width=width,
                         height=height))


def stream_svg(bars: Sequence[Bar], lanes: int, colours: dict[str, str],
               width: int = WIDTH, height: int = HEIGHT) -> Markup:
    shown = list(bars)[-STATIC_BARS:]
    origin = min((b.start for b in shown), default=0.0)
    span = max((b.stop for b in shown), default=origin) - origin or 1.0
    top, lane_h = 18, (height - 22) / max(lanes, 1)
    scale = (width - 8) / span
    rects = []
    last: dict[int, list[Any]] = {}  # lane -> its last rect, to merge bars under a pixel apart
    for b in sorted(shown, key=lambda b: (b.lane, b.start)):
        colour = STATE_COLOURS["erred"] if b.erred else colours.get(b.group, group_colour(0))
        x, w = 4 + (b.start - origin) * scale, max(0.5, (b.stop - b.start) * scale)
        prev = last.get(b.lane)
        if prev is not None and prev[4] == colour and x - (prev[0] + prev[2]) < 1.0:
            prev[2] = max(prev[2], x + w - prev[0])
            continue
        last[b.lane] = [x, round(top + b.lane * lane_h + 1, 1), w, round(max(1.0, lane_h - 2), 1),
                        colour]
        rects.append(last[b.lane])
    rects = [(round(x, 1), y, round(w, 1), h, c) for x, y, w, h, c in rects]
    return Markup(render("_stream.svg.j2", rects=rects, lanes=lanes, span=span,
                         dropped=len(bars) > len(shown), width=width, height=height))


def run_html(f: RunFigures, snapshot: Snapshot | None, graph: Graph, bars: Sequence[Bar],
             colours: dict[str, str], dashboard: str | None, gpu_reason: str | None) -> str:
    """The whole static picture of a run, as HTML."""
    lanes = len(snapshot.lanes) if snapshot is not None else 0
    return render("run.html.j2", graph_svg=graph_svg(graph),
                  stream_svg=stream_svg(bars, lanes, colours),
                  **header_context(f, dashboard), **groups_context(snapshot),
                  **resources_context(snapshot, gpu_reason))
