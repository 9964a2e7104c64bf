"""Errors of the engine: mistakes in a request, and failures of items on workers."""

from __future__ import annotations

import re
import traceback
from dataclasses import dataclass, field
from typing import Any, Protocol

import cloudpickle

#: How many failures a CellError shows in full before it only counts the rest.
SHOWN_FAILURES = 3


class SpecError(ValueError):
    """A mistake in what the user asked for, reported as one line with no traceback.

    The magics turn it into IPython's ``UsageError``; the Python API raises it as is.
    """


def label_text(label: str) -> str:
    """How a run label reads in the notebook: ``cell5`` (a task key's form) reads ``cell 5``."""
    match = re.fullmatch(r"cell(\d+)", label)
    return f"cell {match[1]}" if match else label


def shorten(text: str, limit: int = 120) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def counted(n: int, noun: str) -> str:
    """``counted(1, "worker")`` -> ``1 worker``; ``counted(3, "worker")`` -> ``3 workers``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def type_name(value: Any) -> str:
    """``numpy.ndarray``, ``_thread.lock``, ``list``: the type of ``value`` as users import it."""
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}".removeprefix("builtins.")


def describe_error(exc: BaseException, limit: int = 160) -> str:
    """``TypeError: first line of the message``, for one-line errors."""
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {shorten(lines[0], limit) if lines else ''}"


def safe_repr(value: Any, limit: int = 120) -> str:
    """``repr`` that never raises and never returns a huge string."""
    try:
        text = repr(value)
    except Exception as exc:  # a user's __repr__ may be broken
        text = f"<{type(value).__name__} object (repr failed: {exc!r})>"
    return shorten(text, limit)


class Replay(Protocol):
    """Runs a failed item again in the kernel (:class:`ipydistribute.core.replay.ItemReplay`)."""

    def __call__(self, failure: ItemFailure) -> Any: ...

    def hint(self, failure: ItemFailure) -> str | None:
        """The line a CellError ends with to say how to debug ``failure`` (None if it cannot be)."""


#: Name of the loop function a one-expression cell is compiled into (core/cellfunc.py): its frame
#: is the cell's own line, shown without the name.
EXPRESSION_FUNCTION = "__ipydistribute_cell__"
#: Name of the function that makes a chunk's values in one comprehension: dropped from
#: tracebacks, and its comprehension's frame shown as the cell's own.
VALUES_FUNCTION = "__ipydistribute_values__"


@dataclass
class ItemFailure:
    """One item whose code raised on a worker: everything needed to show it, as plain data."""

    index: int | None  # position of the item in the input (None for the reducer, or --all)
    item: str  # shortened repr of the item
    worker: str
    exc_type: str
    message: str
    frames: list[tuple[str, int, str, str]] = field(default_factory=list)
    #: the original exception when it could be pickled, so `except ValueError` still works
    exception: BaseException | None = None
    #: kernel side only, set by the run (never pickled): runs this item again in the kernel
    replay: Replay | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_exception(
        cls, exc: BaseException, index: int | None, item: str, worker: str, skip_files: tuple[str, ...]
    ) -> ItemFailure:
        frames = []
        ours = False  # the frame after the cell's values function is its comprehension: the cell's own
        for f in traceback.extract_tb(exc.__traceback__):
            if f.filename.startswith(skip_files):
                continue
            if f.name == VALUES_FUNCTION:
                ours = True
                continue
            frames.append((f.filename, f.lineno or 0, EXPRESSION_FUNCTION if ours else f.name, f.line or ""))
            ours = False
        return cls(
            index=index,
            item=item,
            worker=worker,
            exc_type=type(exc).__qualname__,
            message=shorten(str(exc), 2000),
            frames=frames,
            exception=exc,
        )

    def rerun(self) -> Any:
        """Run this item again here, in the kernel, with the values the cell captured when it was
        submitted: returns the item's value, or raises its exception with the cell's own frames
        (then ``%debug`` opens pdb at the failing line, with the item's names).
        """
        __tracebackhide__ = True  # IPython shows the cell's frames, not this one
        if self.replay is None:
            raise SpecError(f"{self.where()} cannot be re-run here: only the failures of a run started "
                            "in this kernel can (this one was pickled or made elsewhere)")
        return self.replay(self)

    def where(self) -> str:
        what = "the reducer" if self.index is None and self.item == "" else f"item {self.item}"
        if self.index is not None:
            what = f"item #{self.index} ({self.item})"
        return f"{what} on {self.worker}" if self.worker else what

    def render(self) -> list[str]:
        lines = [f"{self.exc_type} in {self.where()}"]
        if self.frames:
            lines.append("Traceback (most recent call last):")
            for filename, lineno, name, line in self.frames:
                where = f"{filename}, line {lineno}"
                if name not in ("<module>", "", EXPRESSION_FUNCTION):
                    where += f", in {name}"
                lines.append(f"  {where}")
                if line:
                    lines.append(f"    {line.strip()}")
        lines.append(f"{self.exc_type}: {self.message}" if self.message else self.exc_type)
        return lines

    def __getstate__(self) -> dict[str, Any]:
        # The original exception travels only when it pickles: the plain data always does.
        state = dict(self.__dict__)
        state.pop("replay", None)  # holds the run's payload and input: kernel side only
        if state["exception"] is not None:
            try:
                cloudpickle.dumps(state["exception"])
            except Exception:
                state["exception"] = None
        return state

    def __repr__(self) -> str:
        return f"<failed item #{self.index}: {self.exc_type}: {shorten(self.message, 80)}>"


class ItemError(Exception):
    """Raised on a worker for a failed item (carries the failure as plain data)."""

    def __init__(self, failure: ItemFailure):
        super().__init__(failure)
        self.failure = failure

    def __reduce__(self) -> tuple[Any, ...]:
        return (ItemError, (self.failure,))

    def __str__(self) -> str:
        return f"{self.failure.exc_type} in {self.failure.where()}: {self.failure.message}"


class CellError(Exception):
    """Items of a distributed cell failed: shows the first few with the cell's own frames."""

    def __init__(self, label: str, failures: list[ItemFailure], total: int | None = None):
        self.label = label
        self.failures = failures
        self.total = total if total is not None else len(failures)
        first = failures[0] if failures else None
        summary = f"{self.total} item(s) of {label_text(label)} failed"
        if first is not None:
            summary += f"; first: {first.exc_type}: {shorten(first.message, 200)} ({first.where()})"
        super().__init__(summary)

    @property
    def exceptions(self) -> list[BaseException | None]:
        return [f.exception for f in self.failures]

    def render_lines(self) -> list[str]:
        lines = [f"CellError: {self.total} item(s) of {label_text(self.label)} failed"]
        for failure in self.failures[:SHOWN_FAILURES]:
            lines.append("")
            lines.extend(failure.render())
        hidden = self.total - min(len(self.failures), SHOWN_FAILURES)
        if hidden > 0:
            lines.append("")
            lines.append(f"... and {hidden} more failure(s); `err.failures` lists them.")
        first = self.failures[0] if self.failures else None
        hint = first.replay.hint(first) if first is not None and first.replay is not None else None
        if hint is not None:
            lines += ["", hint]
        return lines

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a local traceback of the engine."""
        return self.render_lines()


class RunLostError(Exception):
    """The cluster lost the run: workers died, the scheduler went away, or the run was cancelled."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class TaskCutShort(ItemError):
    """A task whose item was stuck in C code past its ``--timeout``: the worker ended the task
    with the timeout failure and is restarted by its nanny (at ``nanny``). ``result`` is the
    whole batch (values and failures, the stuck item's included), or None under ``--on-error
    raise`` and with a reducer."""

    def __init__(self, failure: ItemFailure, result: Any = None, nanny: str | None = None):
        super().__init__(failure)
        self.result = result
        self.nanny = nanny

    def __reduce__(self) -> tuple[Any, ...]:
        return (TaskCutShort, (self.failure, self.result, self.nanny))
