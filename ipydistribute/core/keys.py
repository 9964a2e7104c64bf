"""The task-key format of a run, built on the client and read on the scheduler.

A task key is ``(f"{label}-{role}-{token}", n)``: Dask's ``key_split`` groups it as
``label-role`` (the token, 8 hex digits, is left out), so the dashboard shows one group per
cell and role; the monitor's scheduler plugin reads the token back to file the task under its run.

This module imports only the standard library: it travels by value to the scheduler with the
scheduler plugin (core/scheduler_plugin.py), which need not have ipydistribute installed.
"""

from __future__ import annotations

import re
import secrets

#: ``map``, ``run`` (a single cell), ``all`` (once per worker), ``reduceN`` (level N of the tree).
_NAME = re.compile(r"^(?P<label>.+)-(?P<role>[A-Za-z]+\d*)-(?P<token>[0-9a-f]{8})$")


def new_token() -> str:
    """A run token: 8 hex digits, which Dask's key_split leaves out of the group prefix."""
    return secrets.token_hex(4)


def task_key(label: str, role: str, token: str, index: int) -> tuple[str, int]:
    """The key of task ``index`` of ``role`` in the run ``token`` named ``label``."""
    return (f"{label}-{role}-{token}", index)


def parse_key(key: object) -> tuple[str, str, str, int] | None:
    """``(token, group, role, index)`` of an ipydistribute key; None for any other key."""
    if type(key) is not tuple or len(key) != 2:
        return None
    name, index = key
    if type(name) is not str or type(index) is not int:
        return None
    if len(name) < 11 or name[-9] != "-":  # cheap refusal of most foreign keys before the regex
        return None
    match = _NAME.match(name)
    if match is None:
        return None
    return match["token"], name, match["role"], index
