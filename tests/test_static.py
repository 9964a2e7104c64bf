"""The house rules that tools can check: ruff on everything, mypy strict on the engine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.fast  # no cluster, kernel or browser: `make test-fast`

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", name, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = _tool("ruff", "check", "ipydistribute", "bench", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_is_typed_strictly():
    result = _tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
