"""The minimal run view: a progress bar with done/total, elapsed time and rate.

The full live view (graph, task stream, resources) implements the same three methods.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

from ..core.errors import label_text
from ..core.run import Progress
from . import shared
from .lifecycle import close_tree
from .palette import RUN_COLOURS
from .summary import pace, pace_text
from .templates import render


def summary_text(p: Progress) -> str:
    total = "?" if p.items_total is None else f"{p.items_total:,}"
    text = f"{p.items_done:,}/{total} items · {p.tasks_done:,}/{p.tasks_submitted:,} tasks · {p.elapsed:.1f} s"
    return text + pace_text(*pace(p))


def percent(p: Progress) -> float:
    if p.state == "finished":
        return 100.0
    if not p.items_total:
        return 0.0
    return min(100.0, 100.0 * p.items_done / p.items_total)


class ProgressView:
    """A progress bar and one line of figures; frozen into HTML when the run ends."""

    def __init__(self, label: str):
        self.label = label
        self.box: widgets.HBox | None = None  # made when the view first shows, in the display's thread

    def _build_widgets(self) -> widgets.HBox:
        if self.box is None:
            self.bar = widgets.FloatProgress(value=0, min=0, max=100, description=label_text(self.label),
                                             bar_style="info", layout=widgets.Layout(width="360px"))
            self.text = shared.html("starting…")
            self.box = widgets.HBox([self.bar, self.text], layout=shared.layout())
        return self.box

    def live_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = self._build_widgets()._repr_mimebundle_() or {}
        bundle["text/plain"] = "progress of the run (the final figures replace it when the run ends)"
        return bundle

    def update(self, p: Progress) -> None:
        with self._build_widgets().hold_sync():
            self.bar.value = percent(p)
            self.bar.bar_style = {"finished": "success", "error": "danger", "cancelled": "warning"}.get(p.state, "info")
            self.text.value = f"{p.state} · {summary_text(p)}"

    def close(self) -> None:
        """After the static picture replaced it: free the widgets."""
        if self.box is not None:
            close_tree(self.box)

    def final_bundle(self, p: Progress) -> dict[str, Any]:
        html = render("progress.html.j2", p=p, percent=percent(p), summary=summary_text(p),
                      colour=RUN_COLOURS.get(p.state, "#6b7280"))
        return {"text/html": html, "text/plain": f"{label_text(p.label)}: {p.state} · {summary_text(p)}"}
