"""``get_ipython()`` inside an item on a worker: the ``distribute`` magics of a cell that runs
there (IPython turned them into ``get_ipython().run_line_magic(...)`` calls in the kernel)."""

from __future__ import annotations

import sys
import threading
from typing import Any

from ..core.nesting import seceded


class ItemShell:
    """``get_ipython()`` inside an item: runs the ``distribute`` magics on the item's cluster.

    Only ``%distribute`` and ``%%distribute``: the other magics belong to the notebook's kernel.
    """

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}
        self.user_global_ns = self.user_ns
        self.user_ns_hidden: dict[str, Any] = {}
        self.execution_count = 0
        self._magics: Any = None
        self._lock = threading.Lock()

    def transform_cell(self, cell: str) -> str:
        from IPython.core.inputtransformer2 import TransformerManager

        return str(TransformerManager().transform_cell(cell))  # type: ignore[no-untyped-call]

    def _distribute(self) -> Any:
        with self._lock:
            if self._magics is None:
                from .distribute import DistributeMagics

                self._magics = DistributeMagics(shell=self)  # type: ignore[arg-type]  # duck-typed shell
        return self._magics.distribute

    def _check(self, name: str) -> None:
        if name != "distribute":
            from ..core.errors import SpecError

            raise SpecError(f"%{name} cannot run inside an item (on a worker): only %distribute and "
                            "%%distribute can; run it in the notebook")

    def run_line_magic(self, name: str, line: str, _stack_depth: int = 1) -> Any:
        self._check(name)
        local_ns = sys._getframe(_stack_depth).f_locals
        with seceded():
            return self._distribute()(line, None, local_ns=local_ns)

    def run_cell_magic(self, name: str, line: str, cell: str) -> Any:
        self._check(name)
        local_ns = sys._getframe(1).f_locals
        with seceded():
            return self._distribute()(line, cell, local_ns=local_ns)


_shell: ItemShell | None = None
_shell_lock = threading.Lock()


def get_ipython() -> ItemShell:
    global _shell
    with _shell_lock:
        if _shell is None:
            _shell = ItemShell()
    return _shell
