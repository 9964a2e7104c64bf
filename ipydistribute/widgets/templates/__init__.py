"""Jinja2 templates for the static pictures that stay in saved notebooks (autoescape on)."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("ipydistribute.widgets", "templates"),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True)


def render(name: str, **context: Any) -> str:
    return _environment().get_template(name).render(**context)
