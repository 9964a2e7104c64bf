"""Worker events of a run: print() output, probe timings and small results, sent on one Dask
event topic per client and routed to the run they name."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

from distributed import Client


@dataclass(frozen=True)
class OutputRecord:
    """Output of ``print``, a warning or a display in one item, sent back from a worker."""

    index: int | None
    item: str
    worker: str
    stream: str
    text: str
    display: dict[str, Any] | None = None  # a mime bundle shown by the item (display, plt.show)
    warning: str | None = None  # the warning's key: the kernel shows each once per run
    repeats: int = 0  # more occurrences of ``warning`` in the batch, not sent one by one
    displays_dropped: int = 0  # displays of the batch over its cap


def output_topic(client: Client) -> str:
    """The event topic that carries workers' print() output and probe timings to this client
    (all its runs)."""
    return f"ipydistribute-output-{client.id}"


@dataclass
class Inbox:
    """What the workers sent a run through its event topic."""

    output: collections.deque[OutputRecord] = field(default_factory=collections.deque)
    timings: dict[int, tuple[float, int]] = field(default_factory=dict)  # probe batch start -> (s, items)
    results: dict[int, bytes] = field(default_factory=dict)  # batch start -> its pickled result


class EventRouter:
    """One subscription per client; each event goes to the inbox of the run it names.

    The subscription holds only inboxes, never runs, so finished runs can be freed (Dask keeps a
    topic's handler for the client's lifetime).
    """

    def __init__(self) -> None:
        self.routes: dict[str, Inbox] = {}
        self.subscribed: set[str] = set()
        self.lock = threading.Lock()

    def open(self, client: Client, token: str) -> Inbox:
        inbox = Inbox()
        with self.lock:
            self.routes[token] = inbox
            if client.id not in self.subscribed:
                client.subscribe_topic(output_topic(client), self._on_event)
                self.subscribed.add(client.id)
        return inbox

    def close(self, token: str) -> None:
        self.routes.pop(token, None)

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, msg = event
        inbox = self.routes.get(msg.get("token", ""))
        if inbox is None:
            return
        # A timing and a result are sent by a task before it finishes: here when its future is.
        if "timing" in msg:
            start, seconds, count = msg["timing"]
            inbox.timings[start] = (seconds, count)
        if "result" in msg:
            start, result = msg["result"]
            inbox.results[start] = result
        if "timing" not in msg and "result" not in msg:
            inbox.output.append(OutputRecord(msg.get("index"), msg.get("item", ""), msg.get("worker", ""),
                                             msg.get("stream", "stdout"), msg.get("text", ""),
                                             msg.get("display"), msg.get("warning"), int(msg.get("repeats", 0)),
                                             int(msg.get("displays_dropped", 0))))


#: The router of this process (one subscription per client).
router = EventRouter()
