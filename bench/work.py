"""The work every system runs: the same functions, the same calibrated loop counts.

The runner calibrates :func:`spin` once and passes the loop counts to every side, so that
"20 microseconds" and "0.25 s" of work are the same Python loop everywhere.
"""

from __future__ import annotations

import time
from typing import Any

#: Float64 values in one array of workload 4 (1 MiB).
ARRAY_LENGTH = 131_072


def square(x: int) -> int:
    return x * x


def spin(n: int) -> int:
    """A pure-Python loop of ``n`` steps: CPU work that holds the GIL, like most notebook code."""
    total = 0
    for i in range(n):
        total += i
    return total


def spin_item(item: tuple[int, int]) -> int:
    """``spin(n)`` for an item ``(index, n)``; returns a value that depends on the index."""
    index, n = item
    return spin(n) % 7 + index


def build_records(item: tuple[int, int]) -> int:
    """Build ``n`` records (a dict holding a tuple each), keeping every tenth: the objects a
    simulation or a parser makes, which the garbage collector tracks."""
    index, n = item
    kept: list[dict[str, Any]] = []
    for start in range(0, n, 5000):
        rows = [{"i": j, "pair": (j, index)} for j in range(start, min(start + 5000, n))]
        kept.extend(rows[::10])
    return len(kept) + index


def make_array(index: int) -> Any:
    """A 1 MiB NumPy array made on the worker (the input is only its index)."""
    import numpy as np

    return np.random.default_rng(index).random(ARRAY_LENGTH)


def sum_squares(chunk: Any) -> int:
    """The sum of squares of one chunk (the form that chunks by hand use)."""
    return sum(x * x for x in chunk)


def spin_sum(chunk: Any) -> int:
    """``spin_item`` over one chunk, summed (hand-batched peers)."""
    return sum(spin_item(item) for item in chunk)


def calibrate(seconds: float, rounds: int = 5) -> int:
    """Loop count of :func:`spin` that takes about ``seconds`` on this machine (best of rounds)."""
    probe = 200_000
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        spin(probe)
        best = min(best, time.perf_counter() - started)
    return max(1, round(probe * seconds / best))


def add_all(*values: Any) -> Any:
    """The sum of a few values (a node of a hand-written tree reduction)."""
    return sum(values[1:], values[0])
