"""A syntax error in a distributed cell, shown as IPython shows one in a plain cell.

The magic compiles the cell itself, so a ``SyntaxError`` raised there would be shown with the
frames of IPython, the magic and the compiler above the cell's line. This error renders only
what IPython's own syntax-error formatter gives for the cell: file, line, caret, message.
"""

from __future__ import annotations

from typing import Any


class CellSyntaxError(Exception):
    """The cell does not compile (the ``SyntaxError`` is its ``error``)."""

    def __init__(self, error: SyntaxError, lines: list[str]):
        super().__init__(str(error))
        self.error = error
        self.lines = lines

    def _render_traceback_(self) -> list[str]:
        return self.lines


def cell_syntax_error(error: SyntaxError, shell: Any) -> CellSyntaxError:
    """The error to raise for ``error``, formatted by ``shell`` with no frames."""
    formatter = getattr(shell, "SyntaxTB", None)
    if formatter is not None:
        lines = formatter.structured_traceback(type(error), error, [])
    else:
        import traceback

        lines = traceback.format_exception_only(type(error), error)
    return CellSyntaxError(error, [line.rstrip("\n") for line in lines])
