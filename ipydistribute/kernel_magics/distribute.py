"""``%%distribute`` and ``%distribute``: parse, call the engine, display."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.core.magic_arguments import argument, magic_arguments

from ..core import api, cluster, identity, monitor
from ..core.cellfunc import CellCode
from ..core.errors import SpecError, shorten
from ..core.kept import KeptResults
from ..core.kinds import Mode
from ..core.options import OPTIONS, make_run_options
from ..core.run import Run, warn_all
from ..core.stopped import stopped_error
from ..widgets.factory import in_kernel, live_display
from .options import output_options, run_options
from .parse import (
    LoopSpec,
    parse_comprehension,
    parse_loop,
    parse_options,
    split_options,
)
from .prompt import cell_label, prompt_number
from .say import say
from .syntax import cell_syntax_error


def usage_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Engine mistakes (SpecError) become one-line UsageErrors."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except SpecError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


@magics_class
class DistributeMagics(Magics):
    shell: InteractiveShell  # always set: the extension registers the magics on a shell

    @magic_arguments()
    @argument("loop", nargs="*", help="`VAR in ITERABLE` for the cell; `EXPR for VAR in ITERABLE` for the line magic")
    @run_options
    @output_options
    @needs_local_scope
    @line_cell_magic
    @usage_errors
    def distribute(self, line: str, cell: str | None = None, local_ns: dict[str, Any] | None = None) -> Any:
        """Run a cell once per item on the Dask cluster; the value comes back in order.

        Examples::

            %%distribute x in range(1000) --reduce sum --out total
            y = expensive(x)        # names from the notebook are available
            y * 2                   # the last expression is the item's value

            squares = %distribute x * x for x in range(10)

            %%distribute --all      # setup: once on every worker, names stay there
            import numpy as np

            %%distribute p in grid --checkpoint runs/sweep --out scores
            fit_and_score(train, test, **p)
            # run again after an error, Ctrl-C or a kernel restart: only the items not stored run
            # --checkpoint runs/sweep: 30 of 40 items were stored by an earlier run: computing the other 10

        The cell runs once per item, in a fresh namespace that holds the loop variable, the
        notebook's values it reads (sent at submit time) and the names set up with ``--all``.
        Ctrl-C, or the view's Stop button, cancels every task of the cell, stops the items running
        (a worker whose item is stuck in C code is restarted by its nanny) and leaves the cluster
        running; ``--timeout 600`` fails an item that runs longer than 600 s. After a failed item,
        ``%debug`` re-runs it here in the kernel and opens pdb at its failing line.
        """
        head, option_text = split_options(line)
        args = parse_options(self.distribute, option_text)
        spec = parse_loop(head) if cell is not None else parse_comprehension(head)
        if args.all_workers and spec.target is not None:
            raise SpecError("--all runs the cell once per worker: drop `VAR in ITERABLE`, or drop --all")
        if args.all_workers and args.checkpoint is not None:
            raise SpecError("--checkpoint stores the values of items; --all runs a setup once per worker: "
                            "drop --checkpoint")
        values = self._options(args)
        view, out, label = values["view"], values["out"], values["name"]
        options = make_run_options(values)
        source = self.shell.transform_cell(cell) if cell is not None else (spec.expression or "")
        prompt = prompt_number(self.shell)
        label = label or cell_label(prompt)
        try:
            code = CellCode.from_source(source, f"<cell {args.name or prompt}>", spec.target)
        except SyntaxError as exc:  # only the cell's lines, as for a plain cell
            raise cell_syntax_error(exc, self.shell) from None
        if (options.reduce is not None or out) and not code.has_value:
            raise SpecError("the cell's last line must be an expression to give a value (for --reduce/--out): "
                            "end the cell with the value, e.g. `result`")
        items = self._items(spec, local_ns)
        captured = api.capture(code.read_names, {**self.shell.user_ns, **(local_ns or {})}, self.shell.user_ns_hidden)
        handle = self._ensure_cluster(view)
        mode: Mode = "all" if args.all_workers else "single" if spec.target is None else "map"
        run = api.run_cell(handle, code, captured, items, options, mode=mode, label=label)
        return self._finish(run, view, out, args.nowait, code.has_value or mode == "all")

    # --- steps --------------------------------------------------------------------------------

    def _options(self, args: Any) -> dict[str, Any]:
        """Every option's value, parsed and checked by the table (core/options.py)."""
        if args.reduce:
            args.reduce = self._evaluate(args.reduce, "--reduce")
        return {option.keyword: option.from_text(getattr(args, option.keyword)) for option in OPTIONS}

    def _evaluate(self, expression: str, what: str, local_ns: dict[str, Any] | None = None) -> Any:
        try:
            return eval(expression, self.shell.user_global_ns, {**self.shell.user_ns, **(local_ns or {})})
        except Exception as exc:
            raise SpecError(f"{what} `{shorten(expression, 80)}` failed: {type(exc).__name__}: "
                            f"{shorten(str(exc), 200)}") from None

    def _items(self, spec: LoopSpec, local_ns: dict[str, Any] | None) -> Any:
        if spec.iterable is None:
            return None
        items = self._evaluate(spec.iterable, "the iterable", local_ns)
        if isinstance(items, KeptResults):
            return items
        if isinstance(items, (str, bytes)):
            raise SpecError(f"the iterable `{spec.iterable}` is a {type(items).__name__}: it would run once "
                            "per character; wrap it in a list to run once")
        try:
            iter(items)
        except TypeError:
            raise SpecError(f"`{spec.iterable}` is a {type(items).__name__}, which cannot be iterated: "
                            "give a list, range, array or generator") from None
        except Exception as exc:
            raise SpecError(f"the iterable `{shorten(spec.iterable, 80)}` failed when iterated: "
                            f"{type(exc).__name__}: {shorten(str(exc), 200)}") from None
        return items

    def _ensure_cluster(self, view: str) -> cluster.ClusterHandle:
        handle, started = cluster.current(announce=say)
        assert handle is not None
        if started:
            workers = len(identity.workers(handle.client))
            link = handle.dashboard_link or "no dashboard"
            print(f"Started a local Dask cluster: {workers} workers · dashboard {link}")
        if view == "full" and in_kernel(self.shell):
            # Before the first task: the live view's monitor must see every transition.
            monitor.ensure_plugin(handle.client)
        return handle

    def _finish(self, run: Run, view: str, out: str | None, nowait: bool, has_value: bool) -> Any:
        live = live_display(run, view, self.shell)
        if nowait:
            if out:
                run.add_done_callback(lambda r: self._store(r, out))
            return run
        try:
            run.wait()
        except KeyboardInterrupt:  # the notebook's interrupt: one line, no engine frames
            run.cancel()
            live.join(2)
            _say_stopped(run)
            raise stopped_error(run) from None
        live.join(5)
        _say_stopped(run)  # the live view's Stop, or a failure that stopped the other items
        if run.state == "cancelled":  # the view's Stop button
            raise stopped_error(run)
        value = run.result()
        warn_all(run.warnings)
        if out:
            self.shell.user_ns[out] = value
            return None
        return value if has_value else None

    def _store(self, run: Run, out: str) -> None:
        if run.error is None:
            self.shell.user_ns[out] = run.value


def _say_stopped(run: Run) -> None:
    """Which items a stop interrupted and which workers it restarted, under the cell."""
    if run.stop_report is not None and (run.state == "cancelled" or run.stop_report.stopped_anything()):
        print("\n".join(run.stop_report.lines(run.progress().items_done, run.items_total)), file=sys.stderr)
