"""The Python API's types as a type checker sees them: what ``distribute`` returns for each form,
and the mistakes it catches before anything runs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.fast

SNIPPET = '''
from ipydistribute import distribute


def square(x: int) -> int:
    return x * x


def merge(parts: list[int]) -> float:
    return float(sum(parts))


reveal_type(distribute(square, [1, 2]))
reveal_type(distribute(square, range(3), reduce=sum, batch=2))
reveal_type(distribute(square, [1, 2], reduce=merge))
reveal_type(distribute(square, [1, 2], on_error="collect"))
reveal_type(distribute(square, [1, 2], wait=False))
reveal_type(distribute(square, [1, 2], keep=True))
distribute(square, ["a"])
distribute(square, [1], batch="big")
'''


def test_distribute_returns_what_each_form_gives_and_refuses_mismatched_items(tmp_path):
    path = tmp_path / "use_api.py"
    path.write_text(SNIPPET)
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
                            capture_output=True, text=True)
    revealed = re.findall(r'Revealed type is "(.*)"', result.stdout)
    assert revealed == [
        "list[int]",
        "int",
        "float",
        "list[int | ipydistribute.core.errors.ItemFailure]",
        "ipydistribute.core.run.Run",
        "ipydistribute.core.kept.KeptResults | ipydistribute.core.kept.KeptValue",
    ], result.stdout
    errors = {int(line) for line in re.findall(r"use_api\.py:(\d+): error", result.stdout)}
    lines = SNIPPET.splitlines()
    assert errors == {lines.index('distribute(square, ["a"])') + 1,
                      lines.index('distribute(square, [1], batch="big")') + 1}, result.stdout
