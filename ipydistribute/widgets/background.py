"""A call started in a thread of its own, its value taken later: a round trip to the cluster
that overlaps work in the calling thread (the kernel's GIL is free while it waits)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class InBackground(Generic[T]):
    """``fn(*args)`` running in a daemon thread; :meth:`result` waits for its value (or raises
    what it raised)."""

    def __init__(self, fn: Callable[..., T], *args: Any, name: str = "ipydistribute-background"):
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._call, args=(fn, args), name=name, daemon=True)
        self._thread.start()

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def result(self) -> T | None:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
