"""Self-checks for the course notebooks: one friendly line, never a traceback.

Every exercise of the course ends with a cell like::

    check(lambda: abs(pi_estimate - 3.14159) < 0.01,
          lambda: f"π ≈ {pi_estimate:.5f}.",
          "pi_estimate should be 4 * hits / total points.")

The condition is a function, so a missing or half-written answer (``None``, a name not defined
yet, a wrong type) gives the hint instead of an error; so is a success message that formats
the answer, which is only made once the answer is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

Message = Union[str, Callable[[], str]]

PASSED = "✅ Correct!"
NOT_YET = "❌ Not yet:"

__all__ = ["NOT_YET", "PASSED", "check"]


def check(condition: Callable[[], object], success: Message, hint: str) -> None:
    """Print whether ``condition()`` holds: ``success`` (a text, or a function making it) when
    it does, ``hint`` when not."""
    try:
        passed = bool(condition())
    except NameError as exc:
        name = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
        print(f"{NOT_YET} `{name}` is not defined yet: write and run the exercise cell above. {hint}")
        return
    except Exception as exc:  # any mistake in the answer (None, a wrong type...) is a hint, not a crash
        print(f"{NOT_YET} {hint} (checking it gave {type(exc).__name__}: {exc})")
        return
    if not passed:
        print(f"{NOT_YET} {hint}")
        return
    print(f"{PASSED} {success() if callable(success) else success}")
