"""Re-execute the course notebooks and save their fresh outputs into the committed files.

Run by ``make notebooks``::

    python -m ipydistribute.tools.refresh_notebooks notebooks/            # the whole course
    python -m ipydistribute.tools.refresh_notebooks notebooks/03-*.ipynb   # one notebook

Each notebook runs top to bottom in a fresh kernel whose working directory is the notebook's
folder (so ``from selfcheck import check`` works), as an instructor would run it: every
exercise cell (tagged ``exercise``) replaced by the solution file it names
(``%load solutions/02_1.py``). The saved notebook keeps the students' stubs, without outputs,
and the outputs of every other cell. Outputs that would make a notebook heavy are replaced by a
one-line note and stderr (worker logs, warnings) is dropped, except in cells tagged
``raises-exception`` (whose message is the point), so the course stays readable on
GitHub and small in git. A notebook whose cell fails, or whose self-check says "Not yet", is
reported and not written.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Bytes one output may take in the saved notebook before it is replaced by a note.
OUTPUT_LIMIT = 200_000
#: Bytes of widget state (metadata.widgets) kept in a saved notebook; every live view also
#: leaves a static HTML picture, so the state is not needed to read the course.
WIDGET_STATE_LIMIT = 50_000
#: Outputs that only load JavaScript into a live page (BokehJS): nothing to see in a saved notebook.
LOADER_TYPES = frozenset({"application/javascript", "application/vnd.bokehjs_load.v0+json",
                          "application/vnd.bokehjs_exec.v0+json"})
#: What a failed self-check prints (see notebooks/selfcheck.py).
NOT_YET = "❌ Not yet:"
CELL_TIMEOUT = 300
#: How an exercise cell names its solution (the line students run to load it).
SOLUTION_REF = re.compile(r"%load (solutions/[\w.-]+)")


def solution_path(cell: Any, folder: Path) -> Path | None:
    """The solution file an exercise cell names, or None for any other cell."""
    if "exercise" not in cell.get("metadata", {}).get("tags", []):
        return None
    found = SOLUTION_REF.search(cell.source)
    if found is None:
        raise ValueError(f"an exercise cell names no solution (`%load solutions/NN_K.py`): {cell.source[:60]!r}")
    return folder / found.group(1)


def with_solutions(nb: Any, folder: Path) -> Any:
    """A copy of ``nb`` with every exercise cell replaced by its solution, as ``%load`` would do."""
    solved = copy.deepcopy(nb)
    for cell in solved.cells:
        path = solution_path(cell, folder)
        if path is not None:
            cell.source = path.read_text().rstrip("\n")
    return solved


def with_parameters(nb: Any, values: dict[str, str]) -> Any:
    """A copy of ``nb`` with ``NAME = value`` for each of ``values`` in a cell (tagged
    ``injected-parameters``) right after its cell tagged ``parameters``, as papermill does: a test
    runs a notebook on smaller sizes than its reader does."""
    from nbformat.v4 import new_code_cell

    if not values:
        return nb
    given = copy.deepcopy(nb)
    where = [i for i, c in enumerate(given.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(where) != 1:
        raise ValueError(f"{len(where)} cells are tagged `parameters`: exactly one must be to give values")
    declared = given.cells[where[0]].source
    unknown = [name for name in values if not re.search(rf"^{re.escape(name)}\s*=", declared, re.MULTILINE)]
    if unknown:
        raise ValueError(f"the parameters cell assigns no {', '.join(unknown)}")
    cell = new_code_cell("\n".join(f"{name} = {value}" for name, value in values.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    given.cells.insert(where[0] + 1, cell)
    return given


def notebook_paths(targets: Iterable[str | Path]) -> list[Path]:
    """The ``.ipynb`` files named, or found directly in the folders named, in order."""
    paths: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            paths.extend(sorted(p for p in target.glob("*.ipynb") if not p.name.startswith(".")))
        elif target.suffix == ".ipynb" and target.exists():
            paths.append(target)
        else:
            raise SystemExit(f"{target} is neither a notebook nor a folder of notebooks")
    return paths


def execute(nb: Any, folder: Path, timeout: int = CELL_TIMEOUT) -> Any:
    """Run ``nb`` top to bottom in a fresh ``python3`` kernel started in ``folder``."""
    execute_together([nb], folder, timeout)
    return nb


def execute_together(notebooks: Sequence[Any], folder: Path, timeout: int = CELL_TIMEOUT) -> None:
    """Run ``notebooks`` side by side, each in a fresh kernel of its own started in ``folder``;
    once every one has ended, raise the first error (a kernel that waits on timers or its
    cluster leaves the cores to the others)."""
    import asyncio

    from nbclient import NotebookClient

    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # no debugger warning in outputs
    clients = [NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                              resources={"metadata": {"path": str(folder)}}) for nb in notebooks]

    async def run_all() -> list[Any]:
        return await asyncio.gather(*(client.async_execute() for client in clients), return_exceptions=True)

    for outcome in asyncio.run(run_all()):
        if isinstance(outcome, BaseException):
            raise outcome


def _size(output: Any) -> int:
    return len(json.dumps(output, ensure_ascii=False))


def trim_outputs(nb: Any, limit: int = OUTPUT_LIMIT, widget_limit: int = WIDGET_STATE_LIMIT) -> int:
    """Drop script loaders and replace outputs larger than ``limit`` bytes by a note.

    Returns how many outputs were replaced by a note.
    """
    from nbformat.v4 import new_output

    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        expects_error = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        cell.outputs = [o for o in cell.outputs if not _is_loader(o) and (expects_error or not _is_stderr(o))]
        for i, output in enumerate(cell.outputs):
            _keep_html_of_widget(output)
            size = _size(output)
            if size > limit:
                cell.outputs[i] = new_output("stream", name="stdout",
                                             text=f"[an output of {size // 1000} kB was removed to keep "
                                                  "the notebook small: run the cell to see it]\n")
                replaced += 1
    widgets = nb.metadata.get("widgets")
    if widgets is not None and _size(widgets) > widget_limit:
        del nb.metadata["widgets"]
    return replaced


#: A live widget's output: after its kernel it reads "Error displaying widget: model not found".
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _keep_html_of_widget(output: Any) -> None:
    """A widget that has its own HTML picture (the cluster widget, a run view) keeps only that:
    JupyterLab prefers the widget mime type even when the widget's model is gone."""
    data = output.get("data") or {}
    if WIDGET_MIME in data and "text/html" in data:
        del data[WIDGET_MIME]


def _is_stderr(output: Any) -> bool:
    return output.get("output_type") == "stream" and output.get("name") == "stderr"


def _is_loader(output: Any) -> bool:
    data = output.get("data") or {}
    return output.get("output_type") == "display_data" and bool(data) and set(data) <= LOADER_TYPES


def failed_checks(nb: Any) -> list[str]:
    """The texts of self-check outputs that say "Not yet"."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if NOT_YET in text:
                found.append(text.strip())
    return found


def refresh(path: Path, timeout: int = CELL_TIMEOUT) -> float:
    """Execute one notebook and write it back with its outputs; returns the seconds it took."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    solved = with_solutions(nb, path.parent.resolve())
    started = time.perf_counter()
    execute(solved, path.parent.resolve(), timeout)
    seconds = time.perf_counter() - started
    failures = failed_checks(solved)
    if failures:
        raise RuntimeError(f"{path.name}: a self-check failed with the solutions in place: {failures[0]}")
    for cell, ran in zip(nb.cells, solved.cells):
        if cell.cell_type != "code":
            continue
        if solution_path(cell, path.parent) is not None:  # the student's stub is saved blank
            cell.outputs, cell.execution_count = [], None
        else:
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    nb.metadata = solved.metadata
    trim_outputs(nb)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipydistribute.tools.refresh_notebooks",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("targets", nargs="+", help="notebooks, or folders of notebooks")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds one cell may take")
    args = parser.parse_args(argv)
    failed = 0
    for path in notebook_paths(args.targets):
        try:
            seconds = refresh(path, args.timeout)
        except Exception as exc:  # report every notebook, then fail once at the end
            failed += 1
            print(f"FAILED {path}: {type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}", file=sys.stderr)
        else:
            print(f"refreshed {path} in {seconds:.1f} s ({path.stat().st_size // 1000} kB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
