"""What items show besides print(): warnings under the notebook's filters, ``display(...)`` and
matplotlib figures. Runs on the workers, inside a batch's output capture (``core/task.py``).

Warnings: the notebook's ``warnings.filters`` travel with the run. Filters are one list per
process, and a worker runs Dask's threads next to the items, so the process's list is set once
to "always" and :func:`_showwarning` decides: for a thread running a batch, by the notebook's
filters ("error" raises in the item, "ignore" drops); for any other thread, by the filters the
worker had before. Of a batch's warnings it sends the first occurrence of each and counts the
rest, and the kernel shows each warning once per run with the count.

Rich output: ``display(obj)`` in an item (the builtin, or ``IPython.display.display``) sends the
object's mime bundle; ``plt.show()`` sends the open figures as PNG (a matplotlib backend of ours,
``core/mpl_backend.py``); a Figure as an item's value is shown too. At most
:data:`DISPLAYS_PER_BATCH` per batch are sent; the kernel caps a run and counts what it drops.
"""

from __future__ import annotations

import base64
import builtins
import collections
import io
import os
import sys
import threading
import warnings
from typing import Any

from .nesting import dedicated_worker_process

#: Displays a batch sends at most; the kernel's cap per run is ``ipydistribute.display-limit``.
DISPLAYS_PER_BATCH = 20
MPL_BACKEND = "module://ipydistribute.core.mpl_backend"


class _BatchState:
    def __init__(self, capture: Any, payload: Any):
        self.capture = capture
        self.payload = payload
        self.warnings: collections.Counter[str] = collections.Counter()
        self.warning_offsets: dict[str, int] = {}
        self.displays = 0
        self.dropped = 0


_local = threading.local()
_lock = threading.Lock()
_installed = False
_worker_filters: list[Any] = []  # the process's filters before _install, for Dask's own threads
_shown_once: set[tuple[Any, ...]] = set()  # warnings of other threads already shown (default/once/module)
_original_showwarning = warnings.showwarning


def _state() -> _BatchState | None:
    return getattr(_local, "state", None)


# --- the notebook side ------------------------------------------------------------------------

def notebook_filters() -> list[Any]:
    """The kernel's ``warnings.filters`` that can travel (a filter on a class that cannot be
    pickled is left out)."""
    import cloudpickle

    shipped = []
    for entry in warnings.filters:
        try:
            cloudpickle.dumps(entry)
        except Exception:  # noqa: S112 - that one filter stays in the notebook
            continue
        shipped.append(entry)
    return shipped


# --- the worker side --------------------------------------------------------------------------

def _install() -> None:
    global _installed, _worker_filters
    with _lock:
        if _installed:
            return
        _worker_filters = list(warnings.filters)
        filters: list[Any] = warnings.filters  # type: ignore[assignment]
        filters[:] = [("always", None, Warning, None, 0)]  # every warning reaches _showwarning
        warnings._filters_mutated()  # type: ignore[attr-defined]
        warnings.showwarning = _showwarning
        if not hasattr(builtins, "display"):  # an item's `display(...)`, as in a notebook
            builtins.display = display  # type: ignore[attr-defined]
        _use_our_matplotlib_backend()
        _installed = True


_fallbacks: dict[str, Any] = {}


def _route_ipython_display(needed: bool) -> None:
    """Make ``IPython.display.display`` send from items too. Importing IPython costs a worker
    about 0.3 s, so only when it is already imported or the cell's source says ``display``."""
    if "ipython" in _fallbacks or not (needed or "IPython.core.display_functions" in sys.modules):
        return
    try:
        import IPython.core.display_functions as functions
        import IPython.display as ipython_display
    except ImportError:
        return
    with _lock:
        if "ipython" not in _fallbacks:
            _fallbacks["ipython"] = functions.display
            setattr(functions, "display", display)  # noqa: B010 - mypy: a module attribute we replace
            setattr(ipython_display, "display", display)  # noqa: B010


def _use_our_matplotlib_backend() -> None:
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].switch_backend(MPL_BACKEND)
    elif "matplotlib" in sys.modules:
        sys.modules["matplotlib"].use(MPL_BACKEND)
    else:
        os.environ["MPLBACKEND"] = MPL_BACKEND


def _action(filters: list[Any], message: Any, category: type[Warning], filename: str, lineno: int) -> str:
    """What ``filters`` say to do with a warning, as ``warnings.warn_explicit`` decides it."""
    text = str(message)
    module = "__main__" if filename.startswith("<cell") else filename.removesuffix(".py")
    for action, pattern, kind, module_pattern, line in filters:
        if ((pattern is None or pattern.match(text)) and issubclass(category, kind)
                and (module_pattern is None or module_pattern.match(module)) and (line == 0 or line == lineno)):
            return str(action)
    return str(getattr(warnings, "defaultaction", "default"))


def enter(capture: Any, payload: Any) -> None:
    """A batch starts on this thread (called by the output capture)."""
    if dedicated_worker_process():
        _install()
        cell = payload.cell
        _route_ipython_display(cell is not None and "display" in cell.source)
    _local.state = _BatchState(capture, payload)


def leave(capture: Any) -> None:
    """The batch ends: show its figure values, send the counts of repeated warnings."""
    state = _state()
    if state is None or state.capture is not capture:
        return
    try:
        if state.payload.show_figures:
            try:
                _show_figure_values(state)
            except Exception as exc:  # noqa: BLE001 - the values themselves are fine: say it and go on
                capture.write("stderr", f"[the figures of this batch could not be shown: {type(exc).__name__}: "
                                        f"{str(exc)[:200]}]\n")
        for key, count in state.warnings.items():
            if count > 1:
                capture.add(state.warning_offsets[key], {"warning": key, "repeats": count - 1})
        if state.dropped:
            capture.add(capture.cursor.offset(), {"displays_dropped": state.dropped})
    finally:
        _local.state = None


def _showwarning(message: Any, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    state = _state()
    if file is not None:  # written somewhere on purpose (logging.captureWarnings...)
        _original_showwarning(message, category, filename, lineno, file, line)
        return
    shipped = state.payload.warning_filters if state is not None else None
    action = _action(shipped if shipped is not None else _worker_filters, message, category, filename, lineno)
    if action == "ignore":
        return
    if action == "error":  # raised in the code that warned, as the filter asks
        raise message if isinstance(message, Warning) else category(message)
    if state is None:
        key: tuple[Any, ...] = {"once": (str(message), category),
                                "module": (str(message), category, filename)}.get(
                                    action, (str(message), category, filename, lineno))
        if action != "always" and key in _shown_once:
            return
        if len(_shown_once) > 10_000:  # warnings whose text varies: forget rather than grow
            _shown_once.clear()
        _shown_once.add(key)
        _original_showwarning(message, category, filename, lineno, file, line)
        return
    text_key = f"{category.__name__}: {message} ({filename}:{lineno})"[:400]
    state.warnings[text_key] += 1
    if state.warnings[text_key] == 1:
        offset = state.capture.cursor.offset()
        state.warning_offsets[text_key] = offset
        text = warnings.formatwarning(message, category, filename, lineno, line)
        state.capture.add(offset, {"warning": text_key}, text)


def display(*objs: Any, raw: bool = False, **kwargs: Any) -> Any:
    """``display`` inside an item: each object's mime bundle goes to the notebook."""
    state = _state()
    if state is None:
        fallback = _fallbacks.get("ipython")
        if fallback is not None:
            return fallback(*objs, raw=raw, **kwargs)
        print(*objs)
        return None
    for obj in objs:
        _send(state, obj if raw and isinstance(obj, dict) else bundle(obj), state.capture.cursor.offset())
    return None


def _send(state: _BatchState, data: dict[str, Any], offset: int) -> None:
    if state.displays >= DISPLAYS_PER_BATCH:
        state.dropped += 1
        return
    state.displays += 1
    state.capture.add(offset, {"display": data})


def bundle(obj: Any) -> dict[str, Any]:
    """The mime bundle of ``obj`` (PNG for a matplotlib figure), with base64 text for bytes."""
    figure = sys.modules.get("matplotlib.figure")
    if figure is not None and isinstance(obj, figure.Figure):
        return {"image/png": png_of(obj), "text/plain": repr(obj)}
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)  # type: ignore[no-untyped-call]
    return {mime: base64.b64encode(value).decode() if isinstance(value, bytes) else value
            for mime, value in data.items()}


def png_of(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def show_figures() -> None:
    """``plt.show()`` in an item: send every open figure, then close them (a worker has no
    screen, and each item's figures must not pile up in pyplot)."""
    from matplotlib import pyplot
    from matplotlib._pylab_helpers import Gcf

    state = _state()
    for manager in Gcf.get_all_fig_managers():
        if state is not None:
            _send(state, bundle(manager.canvas.figure), state.capture.cursor.offset())
    pyplot.close("all")


def _show_figure_values(state: _BatchState) -> None:
    figure = sys.modules.get("matplotlib.figure")
    if figure is None:
        return
    values = state.capture.cursor.values
    if not values or not isinstance(values[0], figure.Figure):  # a figure cell gives figures throughout
        return
    aligned = len(values) == len(state.capture.items)  # else skipped items shift the offsets
    pyplot = sys.modules.get("matplotlib.pyplot")
    for offset, value in enumerate(values):
        if isinstance(value, figure.Figure):
            _send(state, bundle(value), offset if aligned else -1)
            if pyplot is not None:  # else it is pickled as a pyplot figure, which the kernel shows again
                pyplot.close(value)
