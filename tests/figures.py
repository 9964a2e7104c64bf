"""Measured figures of the reliability tests: printed (pytest -s shows them) and appended to
test-artifacts/reliability-figures.txt, so a full run leaves them for the issue's note.

Figures are never asserted on: the machine is shared and its load varies."""

from __future__ import annotations

import time
from pathlib import Path

FILE = Path(__file__).resolve().parent.parent / "test-artifacts" / "reliability-figures.txt"


def record(name: str, text: str) -> None:
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {name}: {text}"
    print(line)
    FILE.parent.mkdir(parents=True, exist_ok=True)
    with FILE.open("a") as f:
        f.write(line + "\n")
