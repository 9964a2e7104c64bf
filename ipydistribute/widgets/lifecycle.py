"""Closing widgets for good: a widget's children, layout and style are widgets of their own,
and ``Widget.close`` leaves them open (and in ``Widget.widgets``) for the kernel's lifetime."""

from __future__ import annotations

from typing import Any

import ipywidgets

#: Widgets shared by many views for the kernel's life (:mod:`.shared`): never closed here.
_kept: set[int] = set()


def keep_open(widget: Any) -> Any:
    """Mark ``widget`` as shared: :func:`close_tree` leaves it open. Returns ``widget``."""
    _kept.add(id(widget))
    return widget


def close_tree(*roots: Any) -> None:
    """Close each widget and every widget it holds in a trait (children, layout, style...),
    except the shared ones."""
    seen: set[int] = set(_kept)
    stack = list(roots)
    while stack:
        widget = stack.pop()
        if not isinstance(widget, ipywidgets.Widget) or id(widget) in seen:
            continue
        seen.add(id(widget))
        for name in widget.keys:
            value = getattr(widget, name, None)
            if isinstance(value, ipywidgets.Widget):
                stack.append(value)
            elif isinstance(value, (list, tuple)):
                stack.extend(v for v in value if isinstance(v, ipywidgets.Widget))
        widget.close()
