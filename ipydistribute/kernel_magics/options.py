"""Option groups shared by the magics, as decorators (one definition, one help text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.magic_arguments import argument

F = TypeVar("F", bound=Callable[..., Any])


def run_options(func: F) -> F:
    """How the items run: batching, resources, retries, errors."""
    decorators = [
        argument("--reduce", metavar="R", help="reduce the values with R, an expression giving a callable "
                 "that takes an iterable (sum, max, a function of yours, lambda cs: sum(cs, Counter())), read up to "
                 "the next option, no quotes needed. It must be associative: it runs "
                 "inside each batch, then as a tree on the cluster."),
        argument("--batch", metavar="N|auto", default="auto", help="items per task (default auto: times the "
                 "first items, then makes tasks of about 0.2 s, at least 4 per worker thread)"),
        argument("--gpu", metavar="N", nargs="?", const="1", default=None,
                 help="each task needs N GPUs of a worker (resource GPU=N; default 1)"),
        argument("--resources", metavar="K=V,...", help="Dask resources each task needs, e.g. \"MEMORY=4e9\""),
        argument("--workers", metavar="A,B", help="run only on these workers (names or addresses)"),
        argument("--retries", metavar="N", type=int, default=0,
                 help="run an item that raised again, up to N times (only that item; a dead worker's "
                 "unfinished items always run again elsewhere)"),
        argument("--timeout", metavar="SECONDS", help="an item running longer fails with a timeout error "
                 "(subject to --on-error); an item stuck in C code gets its worker process restarted"),
        argument("--on-error", metavar="raise|skip|collect", default="raise", dest="on_error",
                 help="raise: stop at the first failure (default); skip: drop failed items and warn; "
                 "collect: return the failures in place of their values"),
        argument("--checkpoint", metavar="DIR", help="store every finished item's value in DIR (created if "
                 "needed); the same cell run again with the same DIR computes only the items not stored yet "
                 "(after an error, Ctrl-C or a kernel restart). A changed cell or changed captured values "
                 "compute everything again."),
        argument("--name", metavar="LABEL", help="name of the task groups (default: cellN)"),
        argument("--seed", metavar="S", type=int, default=None,
                 help="seed random, numpy.random (and torch) before each item from S and the item's index: "
                 "the same values whatever the batches, workers or retries (ipydistribute.seed_item)"),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def output_options(func: F) -> F:
    """Where the value goes and how much is shown."""
    decorators = [
        argument("--out", metavar="NAME", help="store the value in NAME (only if the run succeeds)"),
        argument("--nowait", action="store_true", help="return a run handle at once (.result(), .cancel())"),
        argument("--keep", action="store_true",
                 help="leave the results on the cluster, for a later %%%%distribute to iterate over"),
        argument("--view", metavar="full|progress|none", default=None,
                 help="how much of the run to show live (default: ipydistribute.view in Dask's config)"),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func
