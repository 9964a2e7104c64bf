"""Every option of ``%%distribute``, declared once, and :class:`RunOptions`, the checked options of a run.

:data:`OPTIONS` is the one table: each :class:`Option` carries its type (by its parse and check),
default, check and help text. From it come the magic's arguments (kernel_magics/options.py), the
keyword arguments of :func:`ipydistribute.distribute` (a test compares the signature), the
fields of :class:`RunOptions` (a test compares them too) and the options table of
docs/distribute.md (:func:`markdown_table`; a test keeps the doc in step).

A check runs once, when a :class:`RunOptions` is made, whichever entry point made it: the magic
parses its text with :attr:`Option.parse`, the Python API passes values, and both end in
:func:`run_options` / ``RunOptions(...)``, so ``distribute(f, xs, gpu=float("nan"))`` is refused
as ``--gpu nan`` is.
"""

from __future__ import annotations

import keyword
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from . import config
from .checkpoint import check_directory
from .errors import SpecError, safe_repr, type_name
from .kinds import OnError, ViewKind
from .seeding import check_seed

ON_ERROR: tuple[OnError, ...] = get_args(OnError)
VIEWS: tuple[ViewKind, ...] = get_args(ViewKind)
MAX_RETRIES = 1000

#: Where an option goes: ``run`` a field of RunOptions (and a keyword of distribute()), ``label``
#: the run's name (a keyword of distribute() too), ``cell`` the magic alone (where the value goes,
#: how the run is shown).
Scope = Literal["run", "label", "cell"]


# --- the magic's text to a value ---------------------------------------------------------------

def parse_batch(text: str) -> int | None:
    """``--batch``: ``"auto"`` -> None, ``"12"`` -> 12."""
    if text == "auto":
        return None
    try:
        size = int(text)
    except ValueError:
        raise SpecError(f"--batch takes a number of items or 'auto', not {text!r}") from None
    return check_batch(size)


def parse_resources(text: str) -> dict[str, float]:
    """``"GPU=1,MEMORY=4e9"`` -> ``{"GPU": 1.0, "MEMORY": 4e9}``."""
    pairs: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            amount: object = float(value)
        except ValueError:
            amount = None
        if not sep:
            raise SpecError(f"--resources takes NAME=AMOUNT pairs like \"GPU=1,MEMORY=4e9\", not {part!r}")
        pairs[name.strip()] = amount if amount is not None else part
    if not pairs:
        raise SpecError("--resources is empty: write it like \"GPU=1\"")
    return check_resources(pairs)


def _parse_gpu(text: str) -> object:
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"--gpu takes a number of GPUs, not {text!r}") from None
    return value if math.isfinite(value) else text  # check_gpu then names what was typed (1e309, not inf)


def _parse_workers(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _parse_seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"--timeout takes a positive number of seconds, like --timeout 60, not {text!r}") from None


def _parse_whole(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise SpecError(f"{flag} takes a whole number, like {flag} 3, not {text!r}") from None
    return parse


# --- checks: a value from either entry point to the value used ---------------------------------

def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: object) -> str:
    """A value as the user typed it (the magic's text) or its short repr (a Python value)."""
    return value if isinstance(value, str) else safe_repr(value, 40)


def check_reduce(value: object) -> Callable[[Iterable[Any]], Any] | None:
    if value is not None and not callable(value):
        raise SpecError(f"--reduce {safe_repr(value, 40)} is a {type_name(value)}, not a callable: "
                        "give a function that takes an iterable of values, like sum")
    return value


def check_batch(value: object) -> int | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, str):
        return parse_batch(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"--batch takes a number of items or 'auto', not {safe_repr(value, 40)}")
    if value < 1:
        raise SpecError(f"--batch must be at least 1 item, not {value}")
    return value


def check_gpu(value: object) -> float:
    """GPUs per task; 0 means none (the default)."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:  # type: ignore[arg-type]
        raise SpecError(f"--gpu must be more than 0 (and finite), not {_shown(value)}")
    return float(value)  # type: ignore[arg-type]


def check_resources(value: object) -> dict[str, float]:
    """Dask resources per task: names and amounts above 0."""
    if value is None:
        return {}
    if isinstance(value, str):
        return parse_resources(value)
    if not isinstance(value, Mapping):
        raise SpecError(f"--resources takes NAME=AMOUNT pairs like \"GPU=1\", not {safe_repr(value, 40)}")
    resources: dict[str, float] = {}
    for name, amount in value.items():
        if (not isinstance(name, str) or not name.isidentifier() or not _is_number(amount)
                or not math.isfinite(amount) or amount <= 0):
            shown = amount if isinstance(amount, str) else f"{name}={amount}"
            raise SpecError(f"--resources takes NAME=AMOUNT pairs like \"GPU=1,MEMORY=4e9\", not {shown!r}")
        resources[name] = float(amount)
    return resources


def check_workers(value: object) -> list[str] | None:
    if value is None:
        return None
    names = _parse_workers(value) if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in names):
        raise SpecError(f"--workers takes worker names or addresses, not {safe_repr(value, 40)}")
    if not names:
        raise SpecError("--workers is empty: name workers like --workers cpu-0,cpu-1")
    return [n.strip() for n in names]


def check_retries(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RETRIES:
        raise SpecError(f"--retries must be between 0 and {MAX_RETRIES}, not {safe_repr(value, 40)}")
    return value


def check_timeout(value: object) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise SpecError(f"--timeout takes a positive number of seconds, like --timeout 60, not {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_on_error(value: object) -> OnError:
    for choice in ON_ERROR:
        if value == choice:
            return choice
    raise SpecError(f"--on-error must be one of {', '.join(ON_ERROR)}, not {safe_repr(value, 40)}")


def check_checkpoint(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise SpecError(f"--checkpoint takes a directory, not {safe_repr(value, 40)}")
    return check_directory(value)


def check_keep(value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"keep takes True or False, not {safe_repr(value, 40)}")
    return value


_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z_][A-Za-z0-9_]*)*$")


def check_label(label: object) -> str | None:
    """``--name``: the task groups' name (None: the magic's cellN, the API's ``distribute``)."""
    if label is None:
        return None
    if not isinstance(label, str) or not _LABEL.match(label) or len(label) > 60:
        raise SpecError(f"--name {safe_repr(label, 70)}: use letters, digits and _ (parts joined by -), "
                        "starting with a letter, at most 60 characters")
    return label


def check_out(name: object) -> str | None:
    if name is not None and (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)):
        raise SpecError(f"--out {safe_repr(name, 40)} is not a variable name: use letters, digits and _")
    return name


def check_view(view: object) -> ViewKind:
    """``--view``; None: the ``ipydistribute.view`` setting of Dask's config."""
    kind = config.get("view") if view is None else view
    for choice in VIEWS:
        if kind == choice:
            return choice
    raise SpecError(f"--view takes {', '.join(VIEWS)}, not {safe_repr(kind, 40)}")


# --- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One option: ``--flag METAVAR`` in the magic, ``keyword=`` in Python."""

    keyword: str
    help: str
    scope: Scope
    group: Literal["run", "output"]  # the magic's help lists run options, then output options
    default: object = None
    metavar: str | None = None  # None: a switch (--keep)
    parse: Callable[[str], object] | None = None  # the magic's text to a value (None: the text)
    check: Callable[[Any], object] | None = None
    flag_name: str | None = None  # when it is not the keyword with - for _
    const: str | None = None  # the value of the flag given without one (--gpu)

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.keyword.replace("_", "-"))

    def from_text(self, text: object) -> object:
        """The magic's value (a string, None when not given, a bool for a switch) to a checked one."""
        value = self.default if text is None else self.parse(text) if self.parse and isinstance(text, str) else text
        return self.check(value) if self.check else value


OPTIONS: tuple[Option, ...] = (
    Option("reduce", "reduce the values with R, an expression giving a callable that takes an iterable "
           "(sum, max, a function of yours, lambda cs: sum(cs, Counter())), read up to the next option, no "
           "quotes needed. It must be associative: it runs inside each batch, then as a tree on the cluster.",
           "run", "run", metavar="R", check=check_reduce),
    Option("batch", "items per task (default auto: times the first items, then makes tasks of about 0.2 s, "
           "at least 4 per worker thread)", "run", "run", default=None, metavar="N|auto",
           parse=parse_batch, check=check_batch),
    Option("gpu", "each task needs N GPUs of a worker (resource GPU=N; the flag alone: 1)", "run", "run",
           default=0.0, metavar="N", parse=_parse_gpu, check=check_gpu, const="1"),
    Option("resources", "Dask resources each task needs, e.g. \"MEMORY=4e9\"", "run", "run",
           default=None, metavar="K=V,...", parse=parse_resources, check=check_resources),
    Option("workers", "run only on these workers (names or addresses)", "run", "run", metavar="A,B",
           parse=_parse_workers, check=check_workers),
    Option("retries", "run an item that raised again, up to N times, on its worker; its batch-mates and "
           "items that succeeded do not run again (a dead worker's unfinished items always run again "
           "elsewhere)", "run", "run", default=0, metavar="N", parse=_parse_whole("--retries"),
           check=check_retries),
    Option("timeout", "an item running longer fails with an ItemTimeout that names the item, the worker "
           "and the time it ran (subject to --on-error and --retries); an item stuck in C code gets its "
           "worker process restarted", "run", "run", metavar="SECONDS", parse=_parse_seconds,
           check=check_timeout),
    Option("on_error", "raise: stop at the first failure (default); skip: drop failed items and warn; "
           "collect: return ItemFailure objects in place of failed values", "run", "run",
           default="raise", metavar="raise|skip|collect", check=check_on_error),
    Option("checkpoint", "store every finished item's value in DIR (created if needed); the same cell run "
           "again with the same DIR computes only the items not stored yet (after an error, Ctrl-C or a "
           "kernel restart). A changed cell or changed captured values compute everything again.",
           "run", "run", metavar="DIR", check=check_checkpoint),
    Option("seed", "seed random, numpy.random (and torch) before each item from S and the item's index: "
           "the same values whatever the batches, workers or retries (ipydistribute.seed_item)",
           "run", "run", metavar="S", parse=_parse_whole("--seed"), check=check_seed),
    Option("keep", "leave the results on the cluster (KeptResults), for a later %%distribute to iterate "
           "over without the data passing through the kernel; .gather() fetches them", "run", "output",
           default=False, check=check_keep),
    Option("name", "name of the task groups on the dashboard (default: cellN for the cell at prompt In [N]; "
           "distribute() uses distribute)", "label", "run", metavar="LABEL", check=check_label),
    Option("out", "store the value in NAME, only if the run succeeds (without --out the value is the "
           "cell's output, and _)", "cell", "output", metavar="NAME",
           check=check_out),
    Option("nowait", "return a Run handle at once: .result(), .as_completed(), .cancel(), .done(), "
           ".progress(); with --out, the name is set when the run finishes (distribute(wait=False))",
           "cell", "output", default=False),
    Option("view", "how much of the run to show live (default: ipydistribute.view in Dask's config)",
           "cell", "output", metavar="full|progress|none", check=check_view),
    Option("all_workers", "run the cell once on every worker; names it assigns stay on the workers for "
           "later cells", "cell", "run", default=False, flag_name="all"),
)

BY_KEYWORD: dict[str, Option] = {o.keyword: o for o in OPTIONS}


@dataclass
class RunOptions:
    """How to run: the options of ``%%distribute`` and of :func:`ipydistribute.distribute`.

    The user's options (scope ``run`` in :data:`OPTIONS`) are checked and normalised when the
    object is made; the rest are tuning from Dask's config.
    """

    reduce: Callable[[Iterable[Any]], Any] | None = None
    batch: int | None = None  # items per task; None: automatic
    gpu: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)
    workers: list[str] | None = None
    retries: int = 0
    timeout: float | None = None  # --timeout: seconds an item may run before it fails
    on_error: OnError = "raise"
    checkpoint: str | None = None  # directory of stored item values (checked by checkpoint.check_directory)
    seed: int | None = None  # each item seeded from SeedSequence(seed) and its index (core/seeding.py)
    keep: bool = False
    max_in_flight: int | None = None  # tasks in flight for a generator; None: 2 per thread
    fan_in: int = field(default_factory=lambda: int(config.get("fan-in")))
    target_task_seconds: float = field(default_factory=lambda: config.seconds("batch.target-duration"))
    max_batch: int = field(default_factory=lambda: int(config.get("batch.max-items")))
    # bytes of payload above which it is scattered once instead of sent with each task
    scatter_threshold: int = field(default_factory=lambda: config.nbytes("scatter-threshold"))

    def __post_init__(self) -> None:
        for option in OPTIONS:
            if option.scope == "run" and option.check is not None:
                setattr(self, option.keyword, option.check(getattr(self, option.keyword)))
        if self.on_error == "collect" and self.reduce is not None:
            raise SpecError("--on-error collect keeps errors in place of values, which a reducer cannot sum: "
                            "use --on-error skip with --reduce")

    def all_resources(self) -> dict[str, float]:
        resources = dict(self.resources)
        if self.gpu:
            resources["GPU"] = self.gpu
        return resources


RUN_FIELDS = tuple(f.name for f in fields(RunOptions))


def make_run_options(values: Mapping[str, object]) -> RunOptions:
    """A checked :class:`RunOptions` from the run-scope values of ``values`` (others are ignored)."""
    chosen: dict[str, Any] = {k: v for k, v in values.items() if k in BY_KEYWORD and BY_KEYWORD[k].scope == "run"}
    return RunOptions(**chosen)  # RunOptions checks each value


def markdown_table() -> str:
    """The options table of docs/distribute.md."""
    rows = ["| option | Python | meaning |", "|---|---|---|"]
    for option in OPTIONS:
        spelling = option.flag + (f" [{option.metavar}]" if option.const else
                                  f" {option.metavar}" if option.metavar else "")
        python = {"run": f"`{option.keyword}=`", "label": f"`{option.keyword}=`"}.get(option.scope, "")
        if option.keyword == "nowait":
            python = "`wait=False`"
        cells = [f"`{spelling}`", python, option.help]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)
