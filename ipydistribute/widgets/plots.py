"""The two bokeh plots of the run view: the task graph and the task stream.

Shown through ``jupyter_bokeh.BokehModel``; updated from the display thread by changing the
columns of their ``ColumnDataSource`` (only the changed columns travel), and synced once more
at the end so a saved notebook keeps the final data, not the first, empty one.
"""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, HoverTool, Quad, Range1d, Scatter, Segment, Text
from bokeh.plotting import figure

from ..core.monitor import Bar, Snapshot
from .graph_layout import Graph, layout
from .palette import STATE_COLOURS, group_colour

#: Task stream bars kept in the browser; older ones scroll out.
STREAM_ROLLOVER = 5_000
_NODE_PX = 9


def _frame(fig: Any) -> Any:
    fig.toolbar.logo = None
    fig.toolbar_location = None
    fig.outline_line_color = None
    fig.min_border_left = fig.min_border_right = 8
    return fig


class GraphPlot:
    """The run's task graph: a node per task (few) or per group (many), coloured by state."""

    def __init__(self, width: int = 460, height: int = 240):
        self.nodes = ColumnDataSource({"x": [], "y": [], "colour": [], "label": [], "size": []})
        self.edges = ColumnDataSource({"x0": [], "y0": [], "x1": [], "y1": []})
        self.texts = ColumnDataSource({"x": [], "y": [], "text": []})
        # No axes and bare glyph renderers: every bokeh model is serialized when the widget is
        # made, and the view is built while the run starts (45 -> 29 models, 41 -> 22 ms).
        fig = figure(width=width, height=height, x_range=Range1d(-0.08, 1.08),
                     y_range=Range1d(-0.05, 1.05), tools="", title="task graph",
                     x_axis_type=None, y_axis_type=None)
        fig.add_glyph(self.edges, Segment(x0="x0", y0="y0", x1="x1", y1="y1", line_color="#9ca3af",
                                          line_alpha=0.6, line_width=1))
        circles = fig.add_glyph(self.nodes, Scatter(x="x", y="y", size="size", fill_color="colour",
                                                    line_color="#374151", line_width=0.5))
        fig.add_glyph(self.texts, Text(x="x", y="y", text="text", text_font_size="11px",
                                       x_offset=12, y_offset=5, text_color="#111827"))
        fig.add_tools(HoverTool(renderers=[circles], tooltips="@label"))
        self.figure = _frame(fig)
        self._shape: tuple[Any, ...] = ()

    def update(self, snapshot: Snapshot) -> Graph:
        graph = layout(snapshot)
        shape = (graph.per_task, len(graph.nodes), len(graph.edges))
        colours = [n.colour for n in graph.nodes]
        labels = [n.label for n in graph.nodes]
        if shape != self._shape:  # new tasks or groups: send the whole layout once
            self._shape = shape
            self.nodes.data = {"x": [n.x for n in graph.nodes], "y": [n.y for n in graph.nodes],
                               "colour": colours, "label": labels,
                               "size": [n.size * _NODE_PX for n in graph.nodes]}
            e = graph.edges
            self.edges.data = {"x0": [s[0] for s in e], "y0": [s[1] for s in e],
                               "x1": [s[2] for s in e], "y1": [s[3] for s in e]}
            texts = [] if graph.per_task else graph.nodes
            self.texts.data = {"x": [n.x for n in texts], "y": [n.y for n in texts],
                               "text": [n.label for n in texts]}
            return graph
        # Same nodes: only the columns that changed travel.
        if list(self.nodes.data["colour"]) != colours:
            self.nodes.data["colour"] = colours
        if not graph.per_task and list(self.texts.data["text"]) != labels:  # group counts
            self.nodes.data["label"] = labels
            self.texts.data["text"] = labels
        return graph


class StreamPlot:
    """The task stream: a lane per worker thread, a bar per task, coloured by group."""

    def __init__(self, width: int = 460, height: int = 240):
        self.bars = ColumnDataSource({"left": [], "right": [], "bottom": [], "top": [],
                                      "colour": []})
        fig = figure(width=width, height=height, tools="", title="task stream (s)",
                     y_range=Range1d(-0.5, 0.5), x_range=Range1d(0, 1), y_axis_type=None)
        fig.add_glyph(self.bars, Quad(left="left", right="right", bottom="bottom", top="top",
                                      fill_color="colour", line_color=None))
        self.figure = _frame(fig)
        self.origin: float | None = None
        self.colours: dict[str, str] = {}
        self.lanes = 0
        self.end = 1.0

    def colour_of(self, group: str, snapshot: Snapshot) -> str:
        if group not in self.colours:
            order = sorted(snapshot.groups, key=lambda g: (g.level, g.name))
            names = [g.name for g in order]
            position = names.index(group) if group in names else len(self.colours)
            self.colours[group] = group_colour(position)
        return self.colours[group]

    def update(self, snapshot: Snapshot) -> None:
        if self.origin is None and snapshot.first_start:
            self.origin = snapshot.first_start
        if self.origin is None:
            return
        bars: list[Bar] = snapshot.new_bars
        if bars:
            o = self.origin
            self.bars.stream({
                "left": [round(b.start - o, 3) for b in bars],
                "right": [round(b.stop - o, 3) for b in bars],
                "bottom": [b.lane - 0.4 for b in bars],
                "top": [b.lane + 0.4 for b in bars],
                "colour": [STATE_COLOURS["erred"] if b.erred else self.colour_of(b.group, snapshot)
                           for b in bars],
            }, rollover=STREAM_ROLLOVER)
        lanes = len(snapshot.lanes)
        if lanes != self.lanes and lanes:
            self.lanes = lanes
            self.figure.y_range.end = lanes - 0.5
        end = round(snapshot.last_stop - self.origin, 1)
        if end > self.end:  # the time axis grows with the bars
            self.end = end
            self.figure.x_range.end = end
