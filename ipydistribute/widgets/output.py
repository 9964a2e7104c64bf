"""print() output of workers, written under the cell that ran the items, labelled with the item."""

from __future__ import annotations

import sys
from typing import Any

from ..core import config
from ..core.events import OutputRecord
from ..core.run import Run


def label(record: OutputRecord) -> str:
    where = record.worker.removeprefix("tcp://").removeprefix("tls://")
    item = f"item {record.index}" if record.index is not None else "run"
    return f"[{item} @ {where}] " if where else f"[{item}] "


class OutputForwarder:
    """Drains a run's output records into this thread's stdout/stderr, with a per-run cap."""

    def __init__(self, run: Run, limit: int | None = None):
        self.run = run
        self.limit = int(config.get("output-limit")) if limit is None else limit
        self.written = 0
        self.dropped = 0
        self._line_open: dict[tuple[str, int | None], bool] = {}

    def drain(self) -> None:
        while self.run.output:
            record = self.run.output.popleft()
            self._write(record)

    def close(self) -> None:
        self.drain()
        if self.dropped:
            sys.stderr.write(f"[... {self.dropped} more characters of worker output were not shown]\n")
            self.dropped = 0
        sys.stdout.flush()
        sys.stderr.flush()

    def _write(self, record: OutputRecord) -> None:
        text = self._labelled(record)
        room = self.limit - self.written
        if room <= 0:
            self.dropped += len(record.text)
            return
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room] + "\n"
        self.written += len(text)
        stream = sys.stdout if record.stream == "stdout" else sys.stderr
        stream.write(text)

    def _labelled(self, record: OutputRecord) -> str:
        key = (record.stream, record.index)
        prefix = label(record)
        out = []
        at_line_start = not self._line_open.get(key, False)
        for piece in record.text.splitlines(keepends=True):
            out.append((prefix if at_line_start else "") + piece)
            at_line_start = piece.endswith("\n")
        self._line_open[key] = not at_line_start
        return "".join(out)


class thread_output_parent:
    """Route this thread's stdout/stderr and displays to the cell with ``parent`` (ipykernel >= 7.1)."""

    def __init__(self, parent: dict[str, Any] | None):
        self.parent = parent
        self.tokens: list[tuple[Any, Any]] = []

    def __enter__(self) -> None:
        if not self.parent:
            return
        from IPython import get_ipython

        shell = get_ipython()
        publisher = getattr(shell, "display_pub", None)
        for stream in (sys.stdout, sys.stderr, publisher):
            setter = getattr(stream, "set_thread_parent", None)
            if setter is not None:
                self.tokens.append((stream, setter(self.parent)))

    def __exit__(self, *exc: object) -> None:
        for stream, token in self.tokens:
            stream.reset_thread_parent(token)
