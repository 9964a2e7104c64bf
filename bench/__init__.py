"""Benchmarks of ipydistribute against the systems a notebook user would otherwise use.

Run ``python -m bench`` (``make bench``); ``--quick`` is a reduced run, ``--check`` exits
non-zero when a target is missed. Each system runs in its own process; the ratios compare
systems measured in the same run, because absolute times on a shared machine are noisy.
"""

from __future__ import annotations

__all__: list[str] = []
