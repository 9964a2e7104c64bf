"""The names of states, modes and choices, as literal types: mypy catches a misspelt one."""

from __future__ import annotations

from typing import Literal

#: --on-error: stop at the first failure, drop failed items, or return them in place of values.
OnError = Literal["raise", "skip", "collect"]
#: --view: how much of a run is shown live.
ViewKind = Literal["full", "progress", "none"]
#: What a run does with its cell: once per item, once, or once per worker (--all).
Mode = Literal["map", "single", "all"]
#: A run's state, as Run.state and Progress.state say it.
RunState = Literal["pending", "running", "finished", "error", "cancelled"]
#: A run's state as a view shows it: "stopping" between the Stop button and the run's end.
ShownState = RunState | Literal["stopping"]
