"""The full live view of a run: header, progress per group, task graph, task stream, workers.

Driven by :class:`~ipydistribute.widgets.live.LiveDisplay` from its background thread: each
:meth:`RunView.update` polls the scheduler once (:class:`~ipydistribute.core.monitor.RunMonitor`)
and changes only what changed, so an update costs the same for 100 tasks as for 100,000.

The Stop button cancels the run, also while the cell blocks in ``%%distribute``: its clicks
are handled in the page's comm subshell (:mod:`~ipydistribute.widgets.subshell`), not behind
the busy cell.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import math
import time
from concurrent.futures import ThreadPoolExecutor
from html import escape
from typing import Any

import ipywidgets as widgets

from ..core.errors import label_text
from ..core.hints import hint
from ..core.monitor import Bar, RunMonitor, Snapshot
from ..core.run import Progress, Run
from ..core.timing import run_timing
from . import shared
from .graph_layout import Graph, layout
from .lifecycle import close_tree
from .picture import PANEL_H, PANEL_W
from .static import (
    STATIC_BARS,
    groups_context,
    header_context,
    resources_context,
    run_html,
    run_png,
)
from .subshell import handle_while_cell_runs
from .summary import RunFigures, figures, pace
from .templates import render

#: Seconds between two live pictures (the text parts update at the display's rate, 5/s): a
#: picture costs 6-9 ms of the kernel's CPU, which the workers share, and 5-15 KB to send; at
#: 2 a second they were half the view's CPU while a run went.
PICTURE_INTERVAL = 1.0

#: Reads Dask's timing of an ended run while the view draws its final picture (a round trip to
#: the cluster; the kernel's GIL is free while it waits).
_TIMING_READER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ipydistribute-timing")


def _picture_due(progress: Progress, age: float) -> bool:
    """Whether to draw a live picture now, the last one being ``age`` seconds old.

    Not for an ended run (the final picture replaces it), and not while the run should end
    within PICTURE_INTERVAL at its pace so far, unless the picture shown is older than
    2 x PICTURE_INTERVAL (a straggler still gets a picture every 2 s). The first live picture
    comes with the view's first update. A 1 s cell drew two live pictures, the second one
    shown for about 0.1 s."""
    if progress.state not in ("pending", "running") or age < PICTURE_INTERVAL:
        return False
    _, eta = pace(progress)
    return eta is None or eta >= PICTURE_INTERVAL or age >= 2 * PICTURE_INTERVAL


class RunView:
    """Widgets of one run; frozen into a static HTML picture when the run ends."""

    def __init__(self, run: Run, dashboard: str | None = None, gpu_reason: str | None = None):
        self.run = run
        self.dashboard = dashboard
        self.gpu_reason = gpu_reason
        self.monitor = RunMonitor(run.client, run.token, list(run.workers))
        self.snapshot: Snapshot | None = None
        self.bars: collections.deque[Bar] = collections.deque(maxlen=STATIC_BARS)
        self.stopping = False
        self.graph: Graph = Graph([], [], False, 0)
        self._drawn = -math.inf  # monotonic time the live picture was last drawn
        self.box: widgets.VBox | None = None  # the widgets, built by the first live_bundle or update

    def _build_widgets(self) -> widgets.VBox:
        """The live widgets, made when the view first shows (in the display's thread): the
        cell's own thread submits the run meanwhile (8 ms of CPU and 16-24 ms on the cell's
        thread in a kernel when they were made there), and a quick run never needs them."""
        if self.box is not None:
            return self.box
        self.header = shared.html(f"<strong>{label_text(self.run.label)}</strong> starting…")
        self.stop_button = widgets.Button(description="Stop run", icon="stop", button_style="danger",
                                          tooltip="cancel every task of this cell (the cluster keeps running)",
                                          layout=shared.stop_button_layout(), style=shared.button_style())
        self.stop_button.on_click(self._on_stop)
        handle_while_cell_runs(self.stop_button)
        self.groups = shared.html()
        # The graph and the stream as one PNG drawn in the kernel: a plain ipywidgets Image
        # needs nothing in the page (no BokehJS), so it renders after a reload or in a 2nd tab.
        self.picture = widgets.Image(format="png", width=2 * PANEL_W, height=PANEL_H, layout=shared.layout(),
                                     _dom_classes=["ipd-live-picture"])  # in the comm's opening message
        self.resources = shared.html()
        # No summary widget: the final picture, which has the summary, replaces the live view.
        self.box = widgets.VBox([
            widgets.HBox([self.header, self.stop_button], layout=shared.layout()),
            self.groups,
            self.picture,
            self.resources,
        ], layout=shared.layout(), _dom_classes=["ipydistribute-run"])
        return self.box

    # --- the RunViewProtocol -----------------------------------------------------------------

    def live_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = self._build_widgets()._repr_mimebundle_() or {}
        # Not ipywidgets' "VBox(children=...)": what a page without the widget's kernel shows.
        label = label_text(self.run.label)
        bundle["text/plain"] = f"{label}: live view (the final picture replaces it when the run ends)"
        bundle["text/html"] = (f"<div class='ipydistribute-run' data-state='running'><strong>{escape(label)}</strong>"
                               " running: the live view needs its kernel; the final picture replaces it "
                               "when the run ends</div>")
        return bundle

    def update(self, progress: Progress) -> None:
        """Poll the scheduler and show the run so far (called while it runs; the final picture
        replaces the widgets, so the display does not call it for an ended run)."""
        box = self._build_widgets()
        snapshot = self.monitor.poll()
        self.snapshot = snapshot
        self.bars.extend(snapshot.new_bars)
        f = figures(progress, snapshot, self.run.threads)
        if self.stopping and progress.state in ("pending", "running"):
            f = dataclasses.replace(f, state="stopping")
        with box.hold_sync():
            self.header.value = render("_header.html.j2", **header_context(f, self.dashboard))
            self.groups.value = render("_groups.html.j2", **groups_context(snapshot))
            self.resources.value = render("_resources.html.j2",
                                          **resources_context(snapshot, self.gpu_reason))
            if progress.state not in ("pending", "running"):
                self.stop_button.disabled = True
        self.graph = layout(snapshot)
        now = time.monotonic()
        if _picture_due(progress, now - self._drawn):
            self._drawn = now
            png = run_png(snapshot, self.graph, self.bars, None)
            if png != self.picture.value:  # only a changed picture travels
                self.picture.value = png

    def final_bundle(self, progress: Progress) -> dict[str, Any]:
        """The static picture of the ended run. On the cell's critical path (the cell waits for
        it): Dask's timing of the run (a heartbeat from each worker, then the span: 6-12 ms,
        mostly waiting) is read while this thread polls and draws, and the live widgets, which
        this picture replaces, are not updated."""
        timing_read = _TIMING_READER.submit(run_timing, self.run.client, self.run.span_id)
        snapshot = self.monitor.poll(since=0, limit=STATIC_BARS)  # every bar, up to the cap
        if snapshot.new_bars:
            self.bars = collections.deque(snapshot.new_bars, maxlen=STATIC_BARS)
        self.snapshot = snapshot
        self.graph = layout(snapshot)
        bars = list(self.bars)
        png = run_png(snapshot, self.graph, bars, None)
        timing = timing_read.result()
        f = figures(progress, snapshot, self.run.threads, timing)
        advice = hint(timing, bars, f.items_done, f.tasks_done, f.threads, self.run.options.batch)
        f = dataclasses.replace(f, hint=advice)
        html = run_html(f, snapshot, png, self.dashboard, self.gpu_reason)
        self.final_figures = f
        text = "\n".join([f"{f.label}: {f.state} · {f.header()}", f.summary(), *f.details()])
        return {"text/html": html, "image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}

    def close(self) -> None:
        """After the static picture replaced it: free the widgets and the scheduler's record."""
        self.monitor.forget()
        if self.box is not None:
            close_tree(self.box)

    # --- helpers -------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What the widgets show now (for tests): header, groups, graph and stream data."""
        self._build_widgets()
        nodes = self.graph.nodes
        return {"header": self.header.value, "groups": self.groups.value,
                "resources": self.resources.value,
                "nodes": {"x": [n.x for n in nodes], "y": [n.y for n in nodes],
                          "colour": [n.colour for n in nodes], "label": [n.label for n in nodes]},
                "edges": {"x0": [e[0] for e in self.graph.edges]},
                "bars": {"left": [b.start for b in self.bars], "group": [b.group for b in self.bars]},
                "picture": bytes(self.picture.value)}

    def _on_stop(self, _button: Any) -> None:
        """The Stop click (in the page's comm subshell thread): say so at once, then cancel."""
        self.stopping = True
        with self._build_widgets().hold_sync():
            self.stop_button.disabled = True
            self.stop_button.description = "Stopping"
            self.header.value = self.header.value.replace(
                'data-state="running"', 'data-state="stopping"').replace(">running<", ">stopping<")
        self.run.cancel()


__all__ = ["RunFigures", "RunView"]
