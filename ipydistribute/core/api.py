"""The engine's entry points, shared by the magics and the Python API."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import cloudpickle

from . import cluster as cluster_mod
from .cellfunc import CellCode
from .errors import SpecError, describe_error, type_name
from .events import output_topic
from .run import Run, RunOptions, make_payload, new_token, start_run, warn_all

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z_][A-Za-z0-9_]*)*$")


def check_label(label: str) -> str:
    if not _LABEL.match(label) or len(label) > 60:
        raise SpecError(f"--name {label!r}: use letters, digits and _ (parts joined by -), "
                        "starting with a letter, at most 60 characters")
    return label


def capture(names: Iterable[str], namespace: Mapping[str, Any],
            hidden: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Pickle the values of ``names`` found in ``namespace`` (skipping the shell's own names)."""
    captured: dict[str, bytes] = {}
    hidden = hidden or {}
    for name in sorted(names):
        if name not in namespace:
            continue
        value = namespace[name]
        if name in hidden and hidden[name] is value:
            continue
        try:
            captured[name] = cloudpickle.dumps(value)
        except Exception as exc:
            raise SpecError(
                f"cannot send `{name}` (a {type_name(value)}) to the workers: "
                f"{describe_error(exc)}; create it inside "
                f"the cell, or once per worker with `%%distribute --all`"
            ) from None
    return captured


def run_cell(cell: CellCode, captured: dict[str, bytes], items: Any, options: RunOptions, *,
             mode: str, label: str) -> Run:
    """Start a run of a notebook cell: once per item (map), once (single) or once per worker (all)."""
    handle, _ = cluster_mod.current()
    assert handle is not None
    token = new_token()
    payload = make_payload(label, token, cell=cell, captured=captured, options=options,
                           topic=output_topic(handle.client), store_names=(mode == "all"))
    return start_run(handle.client, payload, items, options, mode=mode)


def distribute(func: Callable[[Any], Any], items: Iterable[Any], *,
               reduce: Callable[[Iterable[Any]], Any] | None = None,
               batch: int | str = "auto", gpu: float = 0, resources: dict[str, float] | None = None,
               workers: list[str] | None = None, retries: int = 0, on_error: str = "raise",
               keep: bool = False, name: str = "distribute", timeout: float | None = None,
               wait: bool = True) -> Any:
    """Run ``func(item)`` for every item on the cluster; the same engine as ``%%distribute``.

    Returns the list of values in item order, or ``reduce``'s value (the reducer takes an
    iterable of values and must be associative: it runs first inside each batch, then as a
    tree). ``timeout``: seconds an item may run before it fails with a timeout error (subject
    to ``on_error``). With ``wait=False`` it returns the :class:`~ipydistribute.core.run.Run` at once.

    >>> distribute(lambda x: x * x, range(4))
    [0, 1, 4, 9]
    """
    if not callable(func):
        raise SpecError(f"distribute() needs a function to call per item, not {type(func).__name__}")
    if reduce is not None and not callable(reduce):
        raise SpecError(f"reduce must be a callable taking an iterable of values, not {type(reduce).__name__}")
    size: int | None
    if batch == "auto":
        size = None
    elif isinstance(batch, int) and not isinstance(batch, bool):
        size = batch
    else:
        raise SpecError(f"batch must be a number of items or 'auto', not {batch!r}")
    options = RunOptions(reduce=reduce, batch=size, gpu=gpu, resources=dict(resources or {}),
                         workers=workers, retries=retries, on_error=on_error, keep=keep, name=name,
                         timeout=timeout)
    handle, _ = cluster_mod.current()
    assert handle is not None
    token = new_token()
    try:
        func_bytes = cloudpickle.dumps(func)
    except Exception as exc:
        raise SpecError(f"cannot send {func!r} to the workers: {exc}") from None
    payload = make_payload(check_label(name), token, options=options, topic=output_topic(handle.client))
    payload.func = func_bytes
    run = start_run(handle.client, payload, items, options)
    if not wait:
        return run
    value = run.result()
    warn_all(run.warnings)
    return value
