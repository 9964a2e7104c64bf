"""The engine's entry points, shared by the magics and the Python API."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, overload

import cloudpickle

from . import cluster as cluster_mod
from . import envcheck, item_output, localmodules, nesting
from .cellfunc import CellCode
from .diagnose import eligible_workers
from .errors import SpecError, describe_error, type_name
from .events import output_topic
from .keys import new_token
from .kinds import Mode, OnError
from .options import RunOptions, check_label, make_run_options
from .run import Run, make_payload, start_run, warn_all
from .wire import Payload

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .errors import ItemFailure
    from .kept import KeptResults, KeptValue


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


def run_cell(handle: cluster_mod.ClusterHandle, cell: CellCode, captured: dict[str, bytes], items: Any,
             options: RunOptions, *, mode: Mode, label: str) -> Run:
    """Start a run of a notebook cell on ``handle``'s cluster: once per item (map), once (single)
    or once per worker (all)."""
    token = new_token()
    payload = make_payload(label, token, cell=cell, captured=captured, options=options,
                           topic=output_topic(handle.client), store_names=(mode == "all"))
    _ship_local_modules(payload, handle.client.id, cell.source)
    payload.warning_filters = item_output.notebook_filters()
    payload.show_figures = mode == "map" and options.reduce is None and not options.keep
    _check_environment(handle, payload, options, cell.source)
    return start_run(handle.client, payload, items, options, mode=mode)


def _ship_local_modules(payload: Payload, client_id: str, source: str | None) -> None:
    """Put the notebook's own modules into the payload; say which changed since the last run."""
    pickles = [*payload.captured.values(), payload.func or b"", payload.reducer or b""]
    payload.modules = localmodules.for_run(source, pickles)
    for name in localmodules.refreshed(client_id, payload.modules):
        print(f"{name} changed since the last run: the workers use the new version")


def _check_environment(handle: cluster_mod.ClusterHandle, payload: Payload, options: RunOptions,
                       source: str | None) -> None:
    """On a cluster the kernel did not start: the modules the run needs, on the workers it may use."""
    if handle.kind in ("local", "worker"):
        return
    _, workers = eligible_workers(handle.client, options, starting=True)  # a new cluster: its first worker
    pickles = [*payload.captured.values(), payload.func or b"", payload.reducer or b""]
    envcheck.check(handle.client, handle.kind, workers, envcheck.modules_to_check(source, pickles, payload.modules))


Item = TypeVar("Item")
Value = TypeVar("Value")
Reduced = TypeVar("Reduced")


class DistributeOptions(TypedDict, total=False):
    """The keywords of :func:`distribute` that do not change the type of what it returns."""

    batch: int | Literal["auto"]
    gpu: float
    resources: Mapping[str, float] | None
    workers: Sequence[str] | None
    retries: int
    timeout: float | None
    checkpoint: str | os.PathLike[str] | None
    seed: int | None
    name: str | None


@overload
def distribute(func: Callable[[Item], Value], items: Iterable[Item], *, reduce: None = None,
               on_error: Literal["raise", "skip"] = "raise", keep: Literal[False] = False,
               wait: Literal[True] = True, **options: Unpack[DistributeOptions]) -> list[Value]: ...
@overload
def distribute(func: Callable[[Item], Value], items: Iterable[Item], *, reduce: None = None,
               on_error: Literal["collect"], keep: Literal[False] = False, wait: Literal[True] = True,
               **options: Unpack[DistributeOptions]) -> list[Value | ItemFailure]: ...
@overload
def distribute(func: Callable[[Item], Value], items: Iterable[Item], *,
               reduce: Callable[[list[Any]], Reduced], on_error: OnError = "raise",
               keep: Literal[False] = False, wait: Literal[True] = True,
               **options: Unpack[DistributeOptions]) -> Reduced: ...
@overload
def distribute(func: Callable[[Item], Value], items: Iterable[Item], *,
               reduce: Callable[[list[Any]], Any] | None = None, on_error: OnError = "raise",
               keep: Literal[True], wait: Literal[True] = True,
               **options: Unpack[DistributeOptions]) -> KeptResults | KeptValue: ...
@overload
def distribute(func: Callable[[Item], Any], items: Iterable[Item], *,
               reduce: Callable[[list[Any]], Any] | None = None, on_error: OnError = "raise",
               keep: bool = False, wait: Literal[False], **options: Unpack[DistributeOptions]) -> Run: ...
def distribute(func: Callable[[Any], Any], items: Iterable[Any], *,
               reduce: Callable[[list[Any]], Any] | None = None,
               batch: int | Literal["auto"] = "auto", gpu: float = 0.0,
               resources: Mapping[str, float] | None = None, workers: Sequence[str] | None = None,
               retries: int = 0, timeout: float | None = None, on_error: OnError = "raise",
               checkpoint: str | os.PathLike[str] | None = None, seed: int | None = None,
               keep: bool = False, name: str | None = None, wait: bool = True) -> Any:
    """Run ``func(item)`` for every item on the cluster; the same engine as ``%%distribute``.

    Returns the list of values in item order, or ``reduce``'s value (the reducer takes an
    iterable of values and must be associative: it runs first inside each batch, then as a
    tree). The keywords are the magic's options (``on_error`` for ``--on-error``), described
    and checked once in :mod:`ipydistribute.core.options`: ``checkpoint`` is a directory where
    finished values are stored, so that a call again with the same function, items and directory
    computes only the rest; ``seed`` seeds ``random``, ``numpy.random`` (and torch) before each
    item from the seed and the item's index (see :func:`ipydistribute.seed_item`); ``timeout``:
    seconds an item may run before it fails with a timeout error (subject to ``on_error``).
    ``name`` (default ``distribute``) names the task groups. With ``wait=False`` it returns the
    :class:`~ipydistribute.core.run.Run` at once.

    >>> distribute(lambda x: x * x, range(4))
    [0, 1, 4, 9]
    """
    options = make_run_options(locals())  # the keywords named in the table; the others are ignored
    label = check_label(name) or "distribute"
    if not callable(func):
        raise SpecError(f"distribute() needs a function to call per item, not {type(func).__name__}")
    handle, _ = cluster_mod.current()
    assert handle is not None
    token = new_token()
    try:
        func_bytes = cloudpickle.dumps(func)
    except Exception as exc:
        raise SpecError(f"cannot send {func!r} to the workers: {exc}") from None
    payload = make_payload(label, token, options=options, topic=output_topic(handle.client))
    payload.func = func_bytes
    _ship_local_modules(payload, handle.client.id, None)
    payload.warning_filters = item_output.notebook_filters()
    _check_environment(handle, payload, options, None)
    run = start_run(handle.client, payload, items, options)
    if not wait:
        return run
    with nesting.seceded():  # inside an item: free its worker thread for the inner tasks
        value = run.result()
    if nesting.in_task():
        nesting.replay_output(run.output)
    warn_all(run.warnings)
    return value
