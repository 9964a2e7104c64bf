"""The cluster widget: a live table of workers with totals, the dashboard link and controls.

One background thread per cluster asks the scheduler for a snapshot at a bounded rate (about
once a second) and feeds every widget showing that cluster; it ends when the cluster closes
or no widget is left. The displayed bundle carries a static HTML table too, replaced by the
last state when the cluster closes, so a saved notebook keeps a picture.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import ipywidgets as widgets
from dask.utils import format_bytes

from ..core import cluster as cluster_mod
from ..core import config
from ..core.cluster_snapshot import ClusterSnapshot, WorkerRow, take
from ..core.errors import SpecError, counted, shorten
from . import freeze
from .templates import render

KIND_TEXT = {"local": "embedded local cluster", "remote": "remote scheduler",
             "manager": "cluster manager", "gateway": "dask-gateway cluster", "user": "your own Client"}


# --- the picture: one renderer for the live table and the saved one ---------------------------


def _row_context(w: WorkerRow) -> dict[str, Any]:
    memory = f"{format_bytes(w.memory_used)} / {format_bytes(w.memory_limit)}" if w.memory_limit \
        else format_bytes(w.memory_used)
    return dict(name=w.name, address=w.address, threads=w.threads, memory=memory, cpu=f"{w.cpu:.0f} %",
                processing=w.processing, resources=w.resources_text or "–",
                gpu_util=w.gpu_utilization_text, gpu_memory=w.gpu_memory_text)


def _gpu_total(s: ClusterSnapshot) -> str:
    parts = []
    if s.gpus_real:
        parts.append(f"{s.gpus_real} GPU (real)")
    if s.gpus_simulated:
        parts.append(f"{s.gpus_simulated} GPU (simulated)")
    return ", ".join(parts)


def _safe_link(link: str | None) -> str | None:
    """Only http(s) and same-server links become clickable (no ``javascript:`` from a config)."""
    if link and (link.startswith(("http://", "https://")) or link.startswith("/")):
        return link
    return None


def table_html(s: ClusterSnapshot) -> str:
    """The cluster as an HTML table (Jinja2, autoescaped)."""
    notes = [n for n in (s.gpu_note, f"scale/adapt: {s.scale_blocked}" if s.scale_blocked else "") if n]
    totals = dict(threads=s.threads, processing=s.processing, gpus=_gpu_total(s),
                  memory=f"{format_bytes(s.memory_used)} / {format_bytes(s.memory_limit)}")
    return render("cluster.html.j2", s=s, kind_text=KIND_TEXT.get(s.kind, s.kind),
                  rows=[_row_context(w) for w in s.workers], totals=totals, notes=notes,
                  link=_safe_link(s.dashboard_link),
                  has_gpu_metrics=any(w.gpu_utilization is not None for w in s.workers))


def table_text(s: ClusterSnapshot) -> str:
    """The cluster as plain text, for terminals and ``text/plain``."""
    state = "running" if s.running else "closed"
    head = (f"Dask cluster ({KIND_TEXT.get(s.kind, s.kind)}) {s.address} · {state} · "
            f"{counted(len(s.workers), 'worker')} · {counted(s.threads, 'thread')} · "
            f"memory {format_bytes(s.memory_used)} / {format_bytes(s.memory_limit)}")
    if s.dashboard_link:
        head += f" · dashboard {s.dashboard_link}"
    lines = [head]
    for w in s.workers:
        c = _row_context(w)
        lines.append(f"  {c['name']:<12} {c['address']:<24} {c['threads']:>2} thr  {c['memory']:>22}  "
                     f"{c['cpu']:>6}  {c['processing']:>4} proc  {c['resources']}")
    lines.extend(f"  {note}" for note in (s.gpu_note, s.scale_blocked or "") if note)
    return "\n".join(lines)


# --- the live widget ---------------------------------------------------------------------------


class ClusterWidget(widgets.VBox):  # type: ignore[misc]
    """A live view of ``handle``'s cluster with scale, adapt, restart and stop controls.

    Controls act on the notebook's current cluster; a control that cannot act is disabled and
    the reason is shown next to it.
    """

    def __init__(self, handle: cluster_mod.ClusterHandle, interval: float | None = None):
        self.handle = handle
        self.snapshot = take(handle)
        self.display_handle: Any = None  # set by show(): the final picture replaces the first
        self._table = widgets.HTML(value=table_html(self.snapshot))
        count = len(self.snapshot.workers)
        narrow = widgets.Layout(width="150px")
        self._scale_n = widgets.BoundedIntText(value=count, min=0, max=10_000, description="workers",
                                               layout=narrow)
        self._scale = widgets.Button(description="Scale", tooltip="ask for this many workers")
        self._adapt_min = widgets.BoundedIntText(value=0, min=0, max=10_000, description="min", layout=narrow)
        self._adapt_max = widgets.BoundedIntText(value=max(count, 1), min=1, max=10_000, description="max",
                                                 layout=narrow)
        self._adapt = widgets.Button(description="Adapt", tooltip="let Dask scale between min and max")
        self._restart = widgets.Button(description="Restart", button_style="warning",
                                       tooltip="restart every worker process (their memory is lost)")
        # Not the red square of a run's Stop: this one ends the cluster.
        stop_text = "Shut down" if handle.owned else "Disconnect"
        self._stop = widgets.Button(description=stop_text, icon="power-off", button_style="",
                                    tooltip="close the cluster" if handle.owned else "leave the remote cluster running")
        self._reason = widgets.Label()
        self._message = widgets.Label()
        self._scale.on_click(lambda _: self._act("scale", lambda: cluster_mod.scale(self._scale_n.value)))
        self._adapt.on_click(lambda _: self._act(
            "adapt", lambda: cluster_mod.adapt(self._adapt_min.value, self._adapt_max.value)))
        self._restart.on_click(lambda _: self._act("restart", cluster_mod.restart))
        self._stop.on_click(lambda _: self._act(stop_text.lower(), cluster_mod.stop))
        controls = widgets.HBox([self._scale_n, self._scale, self._adapt_min, self._adapt_max, self._adapt,
                                 self._restart, self._stop])
        super().__init__(children=[self._table, controls, self._reason, self._message])
        self._apply_controls(self.snapshot)
        self.poller = _Poller.attach(self, interval if interval is not None else config.seconds("cluster-refresh"))

    # --- what the poller calls --------------------------------------------------------------

    def show(self, snapshot: ClusterSnapshot) -> None:
        """Render ``snapshot`` (called from the poller thread, or after an action)."""
        if not snapshot.running:
            if not self.snapshot.running and self.display_handle is None:
                return  # already showing the last picture of this cluster
            # keep the workers of the last look: a closed cluster has none left to report
            snapshot = self.snapshot.closed() if self.snapshot.running else snapshot
        with self._table.hold_sync(), self._reason.hold_sync():
            self._table.value = table_html(snapshot)
            self._apply_controls(snapshot)
        self.snapshot = snapshot  # once shown: who reads it (an action, a test) sees what the table shows
        if not snapshot.running and self.display_handle is not None:
            self.freeze()

    def freeze(self) -> None:
        """Replace the displayed widget by the table of the last look (cluster or kernel ended)."""
        handle, self.display_handle = self.display_handle, None
        freeze.unregister(self)
        if self.snapshot.running:  # the kernel ends: its embedded cluster goes with it
            self.snapshot = self.snapshot.closed()
        if handle is not None:
            handle.update({"text/html": table_html(self.snapshot), "text/plain": table_text(self.snapshot)},
                          raw=True)

    def _apply_controls(self, s: ClusterSnapshot) -> None:
        reason = self._why_off(s)
        scale_reason = reason or s.scale_blocked
        for control in (self._scale_n, self._scale, self._adapt_min, self._adapt_max, self._adapt):
            control.disabled = scale_reason is not None
        self._restart.disabled = self._stop.disabled = reason is not None
        text = reason or (f"scale and adapt are off: {s.scale_blocked}" if s.scale_blocked else "")
        if text != self._reason.value:
            self._reason.value = text

    def _why_off(self, s: ClusterSnapshot) -> str | None:
        if not s.running:
            return "the cluster is closed: start another with %cluster start"
        if cluster_mod._current is not self.handle:
            return "this is no longer the notebook's current cluster: see %cluster status"
        return None

    def _act(self, what: str, action: Any) -> None:
        """A control was clicked (handled when the kernel is idle, on its main thread)."""
        reason = self._why_off(self.snapshot)
        if reason is not None:
            self._message.value = f"{what}: {reason}"
            return
        self._message.value = f"{what}…"
        before = self.snapshot
        try:
            action()
        except SpecError as exc:
            self._message.value = f"{what} failed: {exc}"
            return
        except Exception as exc:  # shown in the widget: a click has no cell to raise into
            self._message.value = f"{what} failed: {type(exc).__name__}: {shorten(str(exc), 200)}"
            return
        self._message.value = f"{what}: done"
        after = take(self.handle)
        if not after.running:
            # The last picture keeps the workers from before the stop: the poller may have looked
            # while they were leaving (a run of the suite under load saw a closed table of none).
            self.snapshot = before
        self.show(after)

    def close(self) -> None:
        self.poller.detach(self)
        super().close()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the refresh thread to end (it ends when the cluster closes)."""
        self.poller.thread.join(timeout)

    # --- display ------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs) or {}
        bundle["text/html"] = table_html(self.snapshot)
        bundle["text/plain"] = table_text(self.snapshot)
        return bundle


class _Poller:
    """One refresh thread per cluster, shared by all widgets that show it."""

    _lock = threading.Lock()
    _running: dict[int, _Poller] = {}

    def __init__(self, handle: cluster_mod.ClusterHandle, interval: float):
        self.handle = handle
        self.interval = max(0.2, interval)  # bounded: at most 5 scheduler calls a second
        self.views: weakref.WeakSet[ClusterWidget] = weakref.WeakSet()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="ipydistribute-cluster-widget", daemon=True)

    @classmethod
    def attach(cls, view: ClusterWidget, interval: float) -> _Poller:
        with cls._lock:
            poller = cls._running.get(id(view.handle))
            if poller is None or poller.handle is not view.handle:
                poller = cls._running[id(view.handle)] = _Poller(view.handle, interval)
                poller.thread.start()
            poller.views.add(view)
            return poller

    def detach(self, view: ClusterWidget) -> None:
        with self._lock:
            self.views.discard(view)

    def _loop(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                with self._lock:
                    views = list(self.views)
                    if not views:  # decided under the lock, so attach() never joins a dying poller
                        self._forget()
                        return
                snapshot = take(self.handle)
                for view in views:
                    view.show(snapshot)
                if not snapshot.running:
                    break
        finally:
            with self._lock:
                self._forget()

    def _forget(self) -> None:
        if self._running.get(id(self.handle)) is self:
            del self._running[id(self.handle)]


def show(handle: cluster_mod.ClusterHandle) -> ClusterWidget:
    """Display the widget of ``handle`` with a display id, so its last state replaces the first."""
    from IPython.display import display

    view = ClusterWidget(handle)
    view.display_handle = display(view, display_id=True)
    freeze.register(view)
    return view
