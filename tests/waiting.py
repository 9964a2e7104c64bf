"""The one way tests wait: on a condition, never on time alone (like distributed's ``poll_for``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 30, what: str = "the condition",
               log: Callable[[], str] | None = None, *, interval: float = 0.05) -> T:
    """Call ``condition`` until it returns something true, and return that; after ``timeout``
    seconds fail, saying ``what`` was awaited (and ``log()``, e.g. a server's output)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}" + (f"\n--- log ---\n{log()}" if log else ""))
        time.sleep(interval)
