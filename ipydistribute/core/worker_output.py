"""Output of a task: print() on a worker goes back to the kernel, labelled with the item.

While a batch runs, its thread's ``sys.stdout``/``sys.stderr`` writes go to a capture (other
threads write through); a flusher thread sends what was captured as Dask events every
``FLUSH_SECONDS`` and at the end of the batch. Runs on the workers.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from . import item_output
from .errors import safe_repr
from .wire import Payload

FLUSH_SECONDS = 0.5


class ItemCursor(Protocol):
    """Which item of the batch runs now (task.py's cursor)."""

    def offset(self) -> int: ...


def current_worker() -> Any:
    """The Dask worker running this task; None outside a task (direct calls in tests)."""
    try:
        from distributed import get_worker

        return get_worker()
    except ValueError:
        return None


def worker_address() -> str:
    worker = current_worker()
    return str(worker.address) if worker is not None else ""


_local = threading.local()


class _RoutedStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr on a worker: a task thread's writes go to its capture."""

    def __init__(self, original: Any, name: str):
        self._original = original
        self._name = name

    def write(self, text: str) -> int:
        capture = getattr(_local, "capture", None)
        if capture is None:
            return int(self._original.write(text))
        capture.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        capture = getattr(_local, "capture", None)
        if capture is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


_install_lock = threading.Lock()


def _install_routing() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _RoutedStream):
            sys.stdout = _RoutedStream(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _RoutedStream):
            sys.stderr = _RoutedStream(sys.stderr, "stderr")


class _Capture:
    """Collects one task thread's output while it runs a batch; sent as events by the flusher
    thread every ``FLUSH_SECONDS`` and at the end of the batch.

    The item that printed is read off the batch's :class:`_Cursor`, so the loop itself pays
    nothing per item for output.
    """

    def __init__(self, topic: str, token: str, worker: str, limit: int, start: int, items: Sequence[Any],
                 cursor: ItemCursor):
        self.topic = topic
        self.token = token
        self.worker = worker
        self.dask_worker = current_worker()  # the flusher thread has no worker context
        self.limit = limit
        self.start = start
        self.items = items
        self.cursor = cursor
        self.lock = threading.Lock()
        self.chunks: list[tuple[int, str, str, dict[str, Any] | None]] = []  # (offset, stream, text, fields)
        self.offset = -1  # the item whose output is being counted
        self.size = 0
        self.dropped = 0

    def write(self, stream: str, text: str) -> None:
        offset = self.cursor.offset()
        with self.lock:
            if offset != self.offset:
                self._note_dropped()
                self.offset, self.size = offset, 0
            room = self.limit - self.size
            if room <= 0:
                self.dropped += len(text)
                return
            if len(text) > room:
                self.dropped += len(text) - room
                text = text[:room]
            self.size += len(text)
            if self.chunks and self.chunks[-1][:2] == (offset, stream) and self.chunks[-1][3] is None:
                self.chunks[-1] = (offset, stream, self.chunks[-1][2] + text, None)
            else:
                self.chunks.append((offset, stream, text, None))
        _ensure_flusher()

    def add(self, offset: int, fields: dict[str, Any], text: str = "") -> None:
        """Send ``fields`` (a display, a warning: see ``core/item_output.py``) in order with the
        output of item ``offset``, unmerged and uncapped by the per-item character limit."""
        with self.lock:
            self.chunks.append((offset, "stderr", text, fields))
        _ensure_flusher()

    def _note_dropped(self) -> None:
        if self.dropped:
            note = f"[... {self.dropped} more characters of output dropped]\n"
            self.chunks.append((self.offset, "stderr", note, None))
            self.dropped = 0

    def close(self) -> None:
        with self.lock:
            self._note_dropped()
        self.flush()

    def flush(self) -> None:
        with self.lock:
            chunks, self.chunks = self.chunks, []
        for offset, stream, text, fields in chunks:
            item = safe_repr(self.items[offset], 60) if 0 <= offset < len(self.items) else ""
            _send_event(self.dask_worker, self.topic, {"token": self.token, "index": self.start + offset, "item": item,
                                                       "worker": self.worker, "stream": stream, "text": text,
                                                       **(fields or {})})


_active_captures: set[_Capture] = set()
_flusher: threading.Thread | None = None


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None or not _flusher.is_alive():
        with _install_lock:
            if _flusher is None or not _flusher.is_alive():
                _flusher = threading.Thread(target=_flush_loop, name="ipydistribute-output", daemon=True)
                _flusher.start()


def _flush_loop() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        for capture in list(_active_captures):
            capture.flush()


def _send_event(worker: Any, topic: str, msg: dict[str, Any]) -> None:
    if worker is not None:
        worker.log_event(topic, msg)
        return
    target = sys.__stdout__ if msg["stream"] == "stdout" else sys.__stderr__
    if target is not None:
        target.write(msg["text"])


class captured:
    """Context manager: route this thread's prints to a capture for the duration of a batch."""

    def __init__(self, payload: Payload, worker: str, start: int, items: Sequence[Any], cursor: ItemCursor):
        self.payload = payload
        self.capture = (_Capture(payload.topic, payload.token, worker, payload.output_limit, start, items, cursor)
                        if payload.topic else None)

    def __enter__(self) -> _Capture | None:
        if self.capture is not None:
            _install_routing()
            self.previous = getattr(_local, "capture", None)
            _local.capture = self.capture
            _active_captures.add(self.capture)
            item_output.enter(self.capture, self.payload)
        return self.capture

    def __exit__(self, *exc: object) -> None:
        if self.capture is not None:
            item_output.leave(self.capture)
            _local.capture = self.previous
            _active_captures.discard(self.capture)
            self.capture.close()
