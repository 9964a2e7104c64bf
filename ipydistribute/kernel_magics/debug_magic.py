"""``%debug`` after a failed distributed cell: re-run the failed item here, open pdb in its frame.

IPython's ``%debug`` opens pdb on the last exception (``sys.last_value`` and its traceback, via
``shell.debugger``). After a ``CellError`` that is the engine's wait in the kernel: the item failed
in a worker process, whose frames are gone. This magic takes ``%debug``'s place: when the last
error is (or wraps) a CellError whose first failure can be re-run, it re-runs that item in the
kernel, makes the item's own exception the last one, and hands over to IPython's debugger, so pdb
opens at the failing line of the cell with the item's names. Anything else goes to IPython's
``%debug`` unchanged; ``%unload_ext ipydistribute`` puts IPython's back.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope

from ..core.errors import CellError, SpecError, safe_repr
from ..core.replay import ItemReplay, describe_rerun, from_user_code


@magics_class
class DebugMagics(Magics):
    shell: InteractiveShell  # always set: the extension registers the magics on a shell

    def __init__(self, shell: Any, ipython_debug: Any):
        super().__init__(shell)
        self.ipython_debug = ipython_debug  # IPython's own %debug, for everything else

    @needs_local_scope
    @line_cell_magic
    def debug(self, line: str = "", cell: str | None = None, local_ns: dict[str, Any] | None = None) -> Any:
        """Open pdb on the last error; after a failed ``%%distribute`` cell, in the failed item.

        After a ``CellError``, ``%debug`` re-runs the first failed item here in the kernel, with
        the values the cell captured when it was submitted and the same item, and opens pdb at
        the line that failed, with the item's names (``p x``, ``up``, ``q``). To debug another
        failure: ``sys.last_value.failures[i].rerun()`` raises that item's error here, then
        ``%debug``. Anything else: IPython's ``%debug`` (``%debug?`` of IPython below).
        """
        err = _last_cell_error()
        if err is None or line.strip() or cell is not None:
            return self._ipython(line, cell, local_ns)
        failure = err.failures[0]
        replay = failure.replay
        if replay is None or not isinstance(replay, ItemReplay):
            print(f"%debug: {failure.where()} cannot be re-run here: the run that failed kept no copy of "
                  "its cell and values")
            return None
        reason = replay.unavailable(failure)
        if reason is not None:
            print(f"%debug: {reason}")
            return None
        print(describe_rerun(failure, err.label))
        try:
            value = failure.rerun()
        except SpecError as exc:  # the item cannot be read again (a released --keep result)
            print(f"%debug: {exc}")
            return None
        except (Exception, SystemExit) as exc:  # the item's own error: what we came for
            error: BaseException = exc
        else:
            print(f"%debug: it ran without error here (value: {safe_repr(value, 80)}): what failed on "
                  f"{failure.worker or 'the cluster'} did not happen in the kernel; nothing to debug")
            return None
        if type(error).__qualname__ != failure.exc_type:
            print(f"%debug: here it raised {type(error).__qualname__}, not {failure.exc_type} as on the "
                  f"cluster{_missing_hint(replay, error)}")
        self._debug(error)
        return None

    def _debug(self, error: BaseException) -> None:
        """Make ``error`` the last exception, as if raised by a cell, and open IPython's pdb on it."""
        tb = from_user_code(error.__traceback__)
        error.__traceback__ = tb
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, tb
        if sys.version_info >= (3, 12):
            sys.last_exc = error
        self.shell.InteractiveTB.tb = None  # read sys.last_traceback, not a traceback shown earlier
        self.shell.debugger(force=True)

    def _ipython(self, line: str, cell: str | None, local_ns: dict[str, Any] | None) -> Any:
        if cell is None:
            return self.ipython_debug(line, local_ns=local_ns)
        return self.ipython_debug(line, cell, local_ns=local_ns)


def _last_cell_error() -> CellError | None:
    """The CellError of the last error shown, if it is one or was raised from one."""
    error = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, CellError) and error.failures:
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def _missing_hint(replay: ItemReplay, error: BaseException) -> str:
    name = getattr(error, "name", None)
    if isinstance(error, NameError) and name in replay.missing_names():
        return (f": `{name}` was set up on the workers with --all and could not be brought here "
                "(it cannot be pickled, or that worker is gone); run that setup in the notebook too")
    return ""


def install_debug(shell: Any) -> None:
    """Put our ``%debug`` in place of IPython's (loading twice keeps IPython's as the fallback)."""
    current = shell.find_magic("debug", "line")  # resolved: IPython may list it as a lazy stand-in
    owner = getattr(current, "__self__", None)
    ipython_debug = owner.ipython_debug if isinstance(owner, DebugMagics) else current
    shell.register_magics(DebugMagics(shell, ipython_debug))


def uninstall_debug(shell: Any) -> None:
    """Give ``%debug`` back to IPython."""
    magics = shell.magics_manager.magics
    owner = getattr(magics["line"].get("debug"), "__self__", None)
    if isinstance(owner, DebugMagics):
        magics["line"]["debug"] = magics["cell"]["debug"] = owner.ipython_debug
    shell.magics_manager.registry.pop("DebugMagics", None)
