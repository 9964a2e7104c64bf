"""Layout and style widgets that every run's view shares, made once per kernel.

Each ipywidgets DOMWidget makes a Layout of its own (and an HTML or a Button a style too), each
a widget with a comm: a run's live view opened 21 comms, and closed them at its end, for the 7
widgets a page shows; each is a message to the page and CPU in the kernel, whose cores the
workers share. The views never change these defaults, so one of each serves every view, and
:func:`~.lifecycle.close_tree` leaves them open.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import ipywidgets as widgets
from ipywidgets.widgets.widget_string import HTMLStyle

from .lifecycle import keep_open

_lock = threading.Lock()  # two --nowait runs' display threads may ask at once


def _shared(make: Any) -> Any:
    """``make()`` once per kernel (thread-safe), kept open for the kernel's life."""
    @functools.wraps(make)
    def once() -> Any:
        with _lock:
            if not hasattr(once, "widget"):
                once.widget = keep_open(make())  # type: ignore[attr-defined]
            return once.widget  # type: ignore[attr-defined]
    return once


@_shared
def layout() -> widgets.Layout:
    """The default layout."""
    return widgets.Layout()


@_shared
def html_style() -> HTMLStyle:
    """The default style of an HTML widget."""
    return HTMLStyle()


@_shared
def button_style() -> widgets.ButtonStyle:
    """The default style of a button."""
    return widgets.ButtonStyle()


@_shared
def stop_button_layout() -> widgets.Layout:
    """The layout of a run's Stop button."""
    return widgets.Layout(width="100px")


def html(value: str = "") -> widgets.HTML:
    """An HTML widget with the shared layout and style: one comm."""
    return widgets.HTML(value=value, layout=layout(), style=html_style())
