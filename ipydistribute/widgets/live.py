"""Showing a view of a run: displayed once, updated from a background thread, frozen at the end.

Updates never run on the kernel's main loop: a thread calls ``view.update`` a few times a
second (several changes per message, under ``hold_sync``), forwards workers' print() output to
the cell, and at the end replaces the live widget with a static picture that stays in the
saved notebook.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from IPython.display import display

from ..core.run import Progress, Run
from . import freeze
from .output import OutputForwarder, thread_output_parent


class RunViewProtocol(Protocol):
    """What a view of a run provides; the live display drives it."""

    def live_bundle(self) -> dict[str, Any]:
        """The mimebundle shown while the run goes (a widget, with a text fallback)."""

    def update(self, progress: Progress) -> None:
        """Show ``progress``; called from the display thread at a bounded rate."""

    def final_bundle(self, progress: Progress) -> dict[str, Any]:
        """The static picture (text/html and text/plain) that replaces the live view."""

    # Optional: ``close()``, called after the static picture replaced the live view (or when
    # the display stops), frees the widgets and whatever the view holds on the cluster.


#: A run that ends within this many seconds shows only its final picture, no live widgets
#: (like tqdm's ``delay``): a quick cell's output does not flicker.
QUICK_SECONDS = 0.3


class LiveDisplay:
    """Runs a view of ``run`` until it ends."""

    def __init__(self, run: Run, view: RunViewProtocol | None, parent: dict[str, Any] | None, rate: float = 5.0):
        self.run = run
        self.view = view
        self.parent = parent
        self.interval = 1.0 / rate
        self.forwarder = OutputForwarder(run)
        self.handle: Any = None
        self._stopped = threading.Event()
        self._shown = threading.Event()  # the final picture is out (the thread then frees the view)
        self.thread = threading.Thread(target=self._loop, name=f"ipydistribute-view-{run.label}", daemon=True)

    def start(self) -> LiveDisplay:
        self.thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait until the final picture is shown: freeing the view (a round trip to the
        scheduler) goes on in the display's thread, off the cell's time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._shown.wait(0.02) and self.thread.is_alive():  # a failed display: not shown
            if deadline is not None and time.monotonic() >= deadline:
                return

    def stop(self) -> None:
        """Stop updating now (kernel shutting down); the run itself is not touched."""
        self._stopped.set()

    def _loop(self) -> None:
        with thread_output_parent(self.parent):
            quick = self.run.wait(QUICK_SECONDS)
            if self.view is not None and not quick:
                self.handle = display(self.view.live_bundle(), raw=True, display_id=True)
                freeze.register(self)
            while not self.run.wait(self.interval) and not self._stopped.is_set():
                self.forwarder.drain()
                if self.view is not None:
                    self.view.update(self.run.progress())
            self.forwarder.close()
            if self.view is not None and not self._stopped.is_set():
                # Straight to the final picture, which the cell waits for: the live widgets it
                # replaces are not updated first.
                bundle = self.view.final_bundle(self.run.progress())
                if self.handle is not None:
                    self.handle.update(bundle, raw=True)
                else:  # a quick run: only the final picture
                    display(bundle, raw=True)
            self._shown.set()
            freeze.unregister(self)
            close = getattr(self.view, "close", None)
            if close is not None:
                close()

    def freeze(self) -> None:
        """The kernel is shutting down while the run goes: leave its picture so far, stop updating."""
        self._stopped.set()
        if self.view is not None and self.handle is not None:
            self.handle.update(self.view.final_bundle(self.run.progress()), raw=True)
