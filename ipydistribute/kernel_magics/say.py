"""One line to the cell now, not at ipykernel's next flush: feedback before a slow step."""

from __future__ import annotations

import sys


def say(line: str) -> None:
    print(line)
    sys.stdout.flush()
