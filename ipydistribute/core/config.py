"""ipydistribute's settings under Dask's configuration, with a packaged YAML of defaults."""

from __future__ import annotations

import os
from typing import Any

import dask.config
import yaml
from dask.utils import parse_bytes, parse_timedelta

_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "ipydistribute.yaml")
_loaded = False


def _ensure_defaults() -> None:
    global _loaded
    if not _loaded:
        with open(_FILE) as f:
            defaults = yaml.safe_load(f)
        dask.config.update_defaults(defaults)
        _loaded = True


def get(key: str) -> Any:
    """``get("view")`` -> the value of ``ipydistribute.view``."""
    _ensure_defaults()
    return dask.config.get(f"ipydistribute.{key}")


def seconds(key: str) -> float:
    return float(parse_timedelta(get(key), default="s"))


def nbytes(key: str) -> int:
    value = get(key)
    return int(parse_bytes(value) if isinstance(value, str) else value)
