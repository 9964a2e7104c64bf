"""What items show, written under the cell that ran them, labelled with the item: print()
output, warnings (each once per run, with a count of repeats) and displays (capped per run)."""

from __future__ import annotations

import collections
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

    def __init__(self, run: Run, limit: int | None = None, display_limit: int | None = None):
        self.run = run
        self.limit = int(config.get("output-limit")) if limit is None else limit
        self.display_limit = int(config.get("display-limit")) if display_limit is None else display_limit
        self.written = 0
        self.dropped = 0
        self.displays = 0
        self.displays_dropped = 0
        self.warning_repeats: collections.Counter[str] = collections.Counter()  # key -> repeats not shown
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
        for key, repeats in self.warning_repeats.items():
            if repeats:
                sys.stderr.write(f"[the warning above was repeated {repeats} more time{'s' if repeats > 1 else ''} "
                                 f"in this run: {key}]\n")
        self.warning_repeats.clear()
        if self.displays_dropped:
            many = self.displays_dropped > 1
            sys.stderr.write(f"[{self.displays_dropped} more display{'s' if many else ''} from items "
                             f"{'were' if many else 'was'} not shown: ipydistribute.display-limit is "
                             f"{self.display_limit} per run]\n")
            self.displays_dropped = 0
        sys.stdout.flush()
        sys.stderr.flush()

    def _write(self, record: OutputRecord) -> None:
        if record.display is not None or record.displays_dropped:
            self._display(record)
            return
        if record.warning is not None:
            if record.repeats or record.warning in self.warning_repeats:
                self.warning_repeats[record.warning] += record.repeats or 1
                return
            self.warning_repeats[record.warning] = 0  # shown once, here
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

    def _display(self, record: OutputRecord) -> None:
        if record.displays_dropped or self.displays >= self.display_limit:
            self.displays_dropped += record.displays_dropped or 1
            return
        self.displays += 1
        from IPython.display import display

        sys.stdout.write(label(record).rstrip() + "\n")
        sys.stdout.flush()  # the label before the picture
        display(record.display, raw=True)

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
