"""The teaching course in notebooks/: structure, and every notebook executed with nbclient.

Each exercise is a code cell tagged ``exercise`` (the student's stub, naming its solution file:
``%load solutions/02_1.py``), a markdown cell tagged ``hints`` (two hints, folded) and one or more
``check`` cells. A notebook is executed twice, side by side: as a student runs it (Run All with the stubs:
every check says "Not yet", nothing fails, no solution runs) and as an instructor runs it (each
stub replaced by its solution file, as ``%load`` does: every check passes). Both runs use
TEST_SIZES where a notebook has a cell tagged ``parameters`` (papermill's convention), so a long
measurement is checked on fewer items.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from ipydistribute.tools.refresh_notebooks import (
    NOT_YET,
    failed_checks,
    notebook_paths,
    solution_path,
    trim_outputs,
    with_parameters,
    with_solutions,
)

COURSE = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(COURSE.glob("[0-9][0-9]-*.ipynb"))
PASSED = "✅ Correct!"
MAX_BYTES = 400_000  # a committed notebook, outputs included
#: Smaller sizes for the test runs (a cell after the one tagged ``parameters``): the course's own
#: sizes are for a reader's measurements, the tests check that every cell and check works.
TEST_SIZES = {"01-why-distribute": {"TASKS": "{0.001: 250, 0.010: 25, 0.100: 4}"}}


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _stdout(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _read(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


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
    assert not [c for c in nb.cells if "solution" in _tags(c)], "solutions live in notebooks/solutions/, not in cells"
    for i in exercises:
        solution = solution_path(nb.cells[i], COURSE)
        assert solution is not None and solution.exists(), f"the exercise in cell {i} names a missing solution"
        hints = nb.cells[i + 1]
        assert "hints" in _tags(hints) and hints.cell_type == "markdown", f"cell {i + 1} holds the hints"
        assert hints.source.count("<details>") == 2, "two hints, each folded"
        checks = []
        for later in nb.cells[i + 2:]:
            if "check" not in _tags(later):
                break
            checks.append(later)
        assert checks and all("check(" in c.source for c in checks), f"a check follows the hints of cell {i}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_hints_and_checks_do_not_give_the_answer_away(path: Path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        solution = solution_path(cell, COURSE)
        if solution is None:
            continue
        stub = _squash(cell.source)
        # what the student sees before loading the answer: the hints and the check cells
        seen = _squash(nb.cells[i + 1].source + "".join(
            c.source for c in nb.cells[i + 2:i + 5] if "check" in _tags(c)))
        for line in solution.read_text().splitlines():
            code = _squash(line.split("#")[0])
            right_side = code.split("=", 1)[1] if re.match(r"^[\w, ]+=[^=]", code) else code
            for piece in {code, right_side}:
                if len(piece) >= 12 and piece not in stub:
                    assert piece not in seen, f"{solution.name}: the hints or checks give away `{line.strip()}`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_fresh_small_outputs(path: Path):
    nb = _read(path)
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes: clear large outputs"
    code = [c for c in nb.cells if c.cell_type == "code"]
    ran = [c for c in code if "exercise" not in _tags(c)]
    assert all(c.execution_count is not None for c in ran), "run `make notebooks` to refresh the outputs"
    assert not [o for c in code for o in c.outputs if o.get("name") == "stderr"
                and "raises-exception" not in _tags(c)], "no warnings or logs are saved"
    assert not failed_checks(nb), "a committed self-check says Not yet"
    for cell in code:
        if "raises-exception" not in _tags(cell):
            assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]
    for cell in code:
        if "check" in _tags(cell):
            assert PASSED in _stdout(cell), cell.source[:80]
    assert any("text/html" in o.get("data", {}) for c in code for o in c.outputs
               if "distribute" in c.source), "the static picture of a run view is saved"


def test_with_solutions_replaces_each_stub_by_its_file():
    nb = _read(NOTEBOOKS[0])
    solved = with_solutions(nb, COURSE)
    stubs = [i for i, c in enumerate(nb.cells) if "exercise" in _tags(c)]
    for i in stubs:
        assert solved.cells[i].source == solution_path(nb.cells[i], COURSE).read_text().rstrip("\n")
        assert "%load" not in solved.cells[i].source
    assert [c.source for i, c in enumerate(solved.cells) if i not in stubs] == \
        [c.source for i, c in enumerate(nb.cells) if i not in stubs]


def test_trim_outputs_and_failed_checks():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    big = new_output("stream", name="stdout", text="x" * 5000)
    small = new_output("stream", name="stdout", text=f"{NOT_YET} try again\n")
    loader = new_output("display_data", data={"application/javascript": "/* BokehJS */"})
    view = new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "m1"},
                                            "text/html": "<b>cluster</b>"})
    nb = new_notebook(cells=[new_code_cell("print()", outputs=[big, small, loader, view])])
    nb.metadata["widgets"] = {"state": "y" * 5000}
    assert trim_outputs(nb, limit=1000, widget_limit=1000) == 1
    assert "removed to keep the notebook small" in nb.cells[0].outputs[0]["text"]
    assert "widgets" not in nb.metadata
    assert len(nb.cells[0].outputs) == 3, "a script loader has nothing to show in a saved notebook"
    assert list(nb.cells[0].outputs[2]["data"]) == ["text/html"], "a view whose widget state is gone shows its HTML"
    assert failed_checks(nb) == [f"{NOT_YET} try again"]
    assert len(json.dumps(nb)) < 2000


def test_with_parameters_sets_values_after_the_parameters_cell():
    nb = _read(COURSE / "01-why-distribute.ipynb")
    given = with_parameters(nb, TEST_SIZES["01-why-distribute"])
    where = next(i for i, c in enumerate(nb.cells) if "parameters" in _tags(c))
    assert given.cells[where + 1].source == f"TASKS = {TEST_SIZES['01-why-distribute']['TASKS']}"
    assert "injected-parameters" in _tags(given.cells[where + 1])
    assert len(given.cells) == len(nb.cells) + 1 and with_parameters(nb, {}) is nb
    with pytest.raises(ValueError, match="assigns no N_WORKERS"):
        with_parameters(nb, {"N_WORKERS": "1"})
    with pytest.raises(ValueError, match="0 cells are tagged"):
        with_parameters(_read(COURSE / "02-map-and-reduce.ipynb"), {"TASKS": "{}"})


def test_notebook_paths(tmp_path: Path):
    (tmp_path / "b.ipynb").write_text("{}")
    (tmp_path / "a.ipynb").write_text("{}")
    assert [p.name for p in notebook_paths([tmp_path])] == ["a.ipynb", "b.ipynb"]
    with pytest.raises(SystemExit):
        notebook_paths([tmp_path / "missing.ipynb"])


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(400)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_all_as_a_student_says_not_yet_and_with_the_solutions_every_check_passes(path: Path):
    """The student's Run All and the instructor's run, side by side in two kernels."""
    from ipydistribute.tools.refresh_notebooks import execute_together

    sizes = TEST_SIZES.get(path.stem, {})
    student = with_parameters(_read(path), sizes)
    instructor = with_parameters(with_solutions(_read(path), COURSE), sizes)
    execute_together([student, instructor], COURSE, timeout=180)  # raises CellExecutionError on any error

    checks = [c for c in student.cells if "check" in _tags(c)]
    for cell in checks:
        assert NOT_YET in _stdout(cell) and PASSED not in _stdout(cell), \
            f"with the exercise left blank this check did not say Not yet: {cell.source[:80]}"
    assert not any(PASSED in _stdout(c) for c in student.cells)

    checks = [c for c in instructor.cells if "check" in _tags(c)]
    assert checks
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


SCALING_ROW = re.compile(r"^\s*(?P<task_ms>\d+) ms\s+(?P<tasks>\d+)\s+(?P<workers>\d+)\s+(?P<serial>[\d.]+) s\s+"
                         r"(?P<wall>[\d.]+) s\s+(?P<predicted>[\d.]+)×\s+(?P<speedup>[\d.]+)×\s+"
                         r"(?P<predicted_busy>\d+)%\s+(?P<busy>\d+)%\s*$", re.MULTILINE)
SUMMARY = re.compile(r"CPU-bound tasks of (?P<task_ms>\d+) ms: speedup (?P<speedup>[\d.]+)x on 2 workers "
                     r"\(predicted (?P<predicted>[\d.]+)x\)")


def test_notebook_01_saved_outputs_show_a_real_speedup_and_its_prediction():
    nb = _read(COURSE / "01-why-distribute.ipynb")
    text = "\n".join(_stdout(c) for c in nb.cells if c.cell_type == "code")
    rows = [{k: float(v) for k, v in m.groupdict().items()} for m in SCALING_ROW.finditer(text)]
    assert {r["workers"] for r in rows} >= {1, 2}, "the predicted-vs-measured table covers 1 and 2 workers"
    assert len({r["task_ms"] for r in rows}) >= 3, "the table covers at least three task sizes"
    for r in rows:
        assert r["speedup"] == pytest.approx(r["serial"] / r["wall"], abs=0.02), "speedup = serial / distributed"
        assert 0 <= r["busy"] <= 100 and 0 <= r["predicted_busy"] <= 100
    largest = max(r["task_ms"] for r in rows)
    cpu_bound = next(r for r in rows if r["task_ms"] == largest and r["workers"] == 2)
    summary = SUMMARY.search(text)
    assert summary, "the notebook states the measured speedup of its CPU-bound case"
    assert float(summary["speedup"]) == pytest.approx(cpu_bound["speedup"], abs=0.01), "the text quotes the table"
    assert float(summary["predicted"]) == pytest.approx(cpu_bound["predicted"], abs=0.01)
    assert cpu_bound["speedup"] >= 1.7, (
        f"the saved outputs show a speedup of {cpu_bound['speedup']}x on 2 workers for {largest:.0f} ms tasks: "
        "refresh notebook 01 on a quiet machine with 2 free cores (make notebooks)")


def test_selfcheck_says_not_yet_for_blank_missing_or_broken_answers(capsys: pytest.CaptureFixture[str]):
    import importlib.util

    spec = importlib.util.spec_from_file_location("selfcheck", COURSE / "selfcheck.py")
    assert spec and spec.loader
    selfcheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selfcheck)
    blank = None
    selfcheck.check(lambda: blank > 1, "yes", "not a number yet")          # a stub left as None
    selfcheck.check(lambda: undefined_name == 1, "yes", "define it")  # type: ignore[name-defined]  # noqa: F821
    selfcheck.check(lambda: False, "yes", "wrong value")
    selfcheck.check(lambda: True, lambda: "right", "unused")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [selfcheck.NOT_YET.rstrip(":")] * 3
    assert "`undefined_name` is not defined yet" in lines[1]
    assert lines[3] == f"{PASSED} right"
