"""A course notebook opened in JupyterLab and run through the UI (Run All), as the instructor
does with the solutions loaded (a student's Run All, where every check says "Not yet", is run
through nbclient in tests/test_notebooks.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_page import open_notebook, output_texts, run_all, wait_for_text, wait_until_done
from waiting import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.notebook]

COURSE = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = "02-map-and-reduce.ipynb"


def test_course_notebook_runs_in_jupyterlab(lab, page, artifacts):
    from ipydistribute.tools.refresh_notebooks import with_solutions

    nb = with_solutions(nbformat.read(COURSE / NOTEBOOK, as_version=4), COURSE)
    for cell in nb.cells:  # start from a clean notebook: every output seen is from this run
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    checks = sum("check" in cell.metadata.get("tags", []) for cell in nb.cells)
    nbformat.write(nb, lab.root / NOTEBOOK)
    for helper in ("selfcheck.py", "coursetools.py"):
        shutil.copy(COURSE / helper, lab.root / helper)

    open_notebook(page, lab, NOTEBOOK)
    run_all(page)
    wait_for_text(page, "✅ Correct!", timeout=120)
    wait_until_done(page, timeout=240)
    page.screenshot(path=str(artifacts / "course-02.png"))
    assert any("✅ Correct!" in t for t in output_texts(page))
    # JupyterLab renders only the cells in view: judge every output from the saved file
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    def checks_saved() -> Any:
        saved = nbformat.read(lab.root / NOTEBOOK, as_version=4)
        texts = [o.get("text", "") for c in saved.cells if c.cell_type == "code" for o in c.outputs]
        return saved if sum("✅ Correct!" in t for t in texts) >= checks else None

    saved = wait_until(checks_saved, 60, f"{checks} passed checks in the saved notebook", interval=0.5)
    check_texts = ["".join(o.get("text", "") for o in c.outputs) for c in saved.cells
                   if "check" in c.metadata.get("tags", [])]
    assert len(check_texts) == checks and all("✅ Correct!" in t for t in check_texts), check_texts
    assert not [o for c in saved.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert any("text/html" in o.get("data", {}) for c in saved.cells
               if c.cell_type == "code" and "%%distribute" in c.source for o in c.outputs), \
        "the run views left their picture in the saved notebook"
    assert not page.errors
