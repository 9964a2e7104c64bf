"""The teaching course in notebooks/: structure, and every notebook executed with nbclient.

Each exercise is three tagged cells: ``exercise`` (the student's stub), ``solution`` (hidden)
and one or more ``check`` cells. The executed variant of each notebook runs, before every
solution, a copy of the checks that follow it: with only the stub run they must print the
friendly "Not yet" message; after the solution the checks themselves must pass.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ipydistribute.tools.refresh_notebooks import (
    NOT_YET,
    failed_checks,
    notebook_paths,
    trim_outputs,
)

COURSE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(COURSE.glob("[0-9][0-9]-*.ipynb"))
PASSED = "✅ Correct!"
MAX_BYTES = 400_000  # a committed notebook, outputs included


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stdout(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def with_blank_checks(nb: Any) -> Any:
    """A copy of ``nb`` that runs each exercise's checks once before its solution."""
    out = copy.deepcopy(nb)
    cells: list[Any] = []
    for i, cell in enumerate(nb.cells):
        if "solution" in _tags(cell):
            for later in nb.cells[i + 1:]:
                if "check" not in _tags(later):
                    break
                blank = copy.deepcopy(later)
                blank.metadata["tags"] = ["blank-check"]
                blank["id"] = f"{later.get('id', i)}-blank"
                cells.append(blank)
        cells.append(copy.deepcopy(cell))
    out.cells = cells
    return out


def test_the_course_has_seven_notebooks_and_a_guide():
    assert len(NOTEBOOKS) == 7, [p.name for p in NOTEBOOKS]
    guide = (COURSE / "README.md").read_text()
    for notebook in NOTEBOOKS:
        assert notebook.name in guide, f"the instructor guide does not list {notebook.name}"
    for topic in ("tls://", "no GPU", "minutes"):
        assert topic in guide


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path: Path):
    nb = _read(path)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Learning goals" in nb.cells[0].source, "the first cell states the learning goals"
    assert "## Summary" in text
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any("%load_ext ipydistribute" in c.source for c in code)
    assert any("%%distribute" in c.source or "%distribute" in c.source for c in code)
    exercises = [i for i, c in enumerate(nb.cells) if "exercise" in _tags(c)]
    assert len(exercises) >= 2, "each notebook has at least two exercises"
    for i in exercises:
        solution, check = nb.cells[i + 1], nb.cells[i + 2]
        assert "solution" in _tags(solution), f"cell {i + 1} after an exercise is its solution"
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, "solutions are collapsed"
        assert "check" in _tags(check), f"cell {i + 2} checks the exercise"
        assert "check(" in check.source
    assert len([c for c in nb.cells if "solution" in _tags(c)]) == len(exercises)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_fresh_small_outputs(path: Path):
    nb = _read(path)
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes: clear large outputs"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code), "run `make notebooks` to refresh the outputs"
    assert not failed_checks(nb), "a committed self-check says Not yet"
    for cell in code:
        if "raises-exception" not in _tags(cell):
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
    for cell in code:
        if "check" in _tags(cell):
            assert PASSED in _stdout(cell), cell.source[:80]
    assert any("text/html" in o.get("data", {}) for c in code for o in c.outputs
               if "distribute" in c.source), "the static picture of a run view is saved"


def test_blank_checks_variant_inserts_checks_before_solutions():
    nb = _read(NOTEBOOKS[0])
    variant = with_blank_checks(nb)
    tags = [(_tags(c) or ["-"])[0] for c in variant.cells]
    n_checks = sum("check" in _tags(c) for c in nb.cells)
    assert tags.count("blank-check") == n_checks
    for i, tag in enumerate(tags):
        if tag == "solution":
            assert tags[i - 1] == "blank-check" and tags[i + 1] == "check"


def test_trim_outputs_and_failed_checks():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    big = new_output("stream", name="stdout", text="x" * 5000)
    small = new_output("stream", name="stdout", text=f"{NOT_YET} try again\n")
    loader = new_output("display_data", data={"application/javascript": "/* BokehJS */"})
    nb = new_notebook(cells=[new_code_cell("print()", outputs=[big, small, loader])])
    nb.metadata["widgets"] = {"state": "y" * 5000}
    assert trim_outputs(nb, limit=1000, widget_limit=1000) == 1
    assert "removed to keep the notebook small" in nb.cells[0].outputs[0]["text"]
    assert "widgets" not in nb.metadata
    assert len(nb.cells[0].outputs) == 2, "a script loader has nothing to show in a saved notebook"
    assert failed_checks(nb) == [f"{NOT_YET} try again"]
    assert len(json.dumps(nb)) < 2000


def test_notebook_paths(tmp_path: Path):
    (tmp_path / "b.ipynb").write_text("{}")
    (tmp_path / "a.ipynb").write_text("{}")
    assert [p.name for p in notebook_paths([tmp_path])] == ["a.ipynb", "b.ipynb"]
    with pytest.raises(SystemExit):
        notebook_paths([tmp_path / "missing.ipynb"])


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_checks_pass_only_with_solutions(path: Path):
    from ipydistribute.tools.refresh_notebooks import execute

    nb = with_blank_checks(_read(path))
    execute(nb, COURSE, timeout=180)  # raises CellExecutionError on any unexpected error
    blank = [c for c in nb.cells if "blank-check" in _tags(c)]
    checks = [c for c in nb.cells if "check" in _tags(c)]
    assert blank and checks
    for cell in blank:
        assert NOT_YET in _stdout(cell), f"with the exercise left blank this check passed: {cell.source[:80]}"
    for cell in checks:
        assert PASSED in _stdout(cell) and NOT_YET not in _stdout(cell), \
            f"with the solution this check failed: {_stdout(cell)}"


def test_quoted_resources_as_in_the_help_text():
    from ipydistribute.kernel_magics.distribute import DistributeMagics
    from ipydistribute.kernel_magics.parse import parse_options, parse_resources, split_options

    _, options = split_options('i in range(3) --resources "GPU=1" --reduce "lambda v: sum(v)"')
    args = parse_options(DistributeMagics.distribute, options)
    assert parse_resources(args.resources) == {"GPU": 1.0}
    assert args.reduce == "lambda v: sum(v)"
