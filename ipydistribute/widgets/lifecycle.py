"""Closing widgets for good: a widget's children, layout and style are widgets of their own,
and ``Widget.close`` leaves them open (and in ``Widget.widgets``) for the kernel's lifetime."""

from __future__ import annotations

from typing import Any

import ipywidgets


def close_tree(*roots: Any) -> None:
    """Close each widget and every widget it holds in a trait (children, layout, style...)."""
    seen: set[int] = set()
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
