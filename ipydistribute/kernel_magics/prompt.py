"""The prompt number of the cell that runs now (``In [5]`` -> 5), for labels and tracebacks.

IPython increments ``execution_count`` before it runs a cell that goes into the history, so
inside the cell ``execution_count`` is one past the prompt (a view said "cell12" for ``In
[11]``). The ``pre_run_cell`` event, fired after that increment, records the prompt.
"""

from __future__ import annotations

from typing import Any

_ATTRIBUTE = "_ipydistribute_prompt"


def _record(shell: Any, info: Any) -> None:
    stored = getattr(info, "store_history", False) and not getattr(info, "silent", False)
    setattr(shell, _ATTRIBUTE, shell.execution_count - 1 if stored else shell.execution_count)


def track_prompts(shell: Any) -> None:
    """Record each cell's prompt number (called by ``%load_ext``; twice is harmless)."""
    callbacks = shell.events.callbacks["pre_run_cell"]
    if not any(getattr(cb, "_ipydistribute", False) for cb in callbacks):
        def record(info: Any) -> None:
            _record(shell, info)

        record._ipydistribute = True  # type: ignore[attr-defined]
        shell.events.register("pre_run_cell", record)


def prompt_number(shell: Any) -> int:
    """The running cell's prompt number; ``execution_count`` when no cell was recorded
    (a magic called directly, as tests do)."""
    return int(getattr(shell, _ATTRIBUTE, shell.execution_count))


def cell_label(number: int) -> str:
    """The run label of prompt ``number``, as used in task keys: ``cell5``."""
    return f"cell{number}"
