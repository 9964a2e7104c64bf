"""Maintenance tools of the project (run with ``python -m ipydistribute.tools.NAME``)."""

from __future__ import annotations

__all__: list[str] = []
