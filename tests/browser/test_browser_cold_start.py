"""The first ``%%distribute`` of a session says at once that it starts a cluster.

Cold start takes seconds (worker processes); the cell shows "Starting a local Dask cluster (N
workers)..." first, then the run. The seconds from running the cell to that first line go to
``test-artifacts/`` (a figure for the report, not a pass mark: the machine is shared).
"""

from __future__ import annotations

import json
import time

import pytest
from jupyter_page import open_notebook, output_texts, wait_for_text, wait_until_done, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_first_cell_says_it_starts_a_cluster_before_it_does(app, request, page, artifacts):
    lab = request.getfixturevalue(app)
    path = write_notebook(lab.root / f"cold-{app}.ipynb",
                          ["%load_ext ipydistribute",
                           "%%distribute x in range(8) --reduce sum\nx"])
    open_notebook(page, lab, path.name)
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 0;"
                  " window.jupyterapp.commands.execute('notebook:run-cell'); }")
    wait_until_done(page)
    clicked = time.monotonic()
    page.evaluate("() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 1;"
                  " window.jupyterapp.commands.execute('notebook:run-cell'); }")
    wait_for_text(page, "Starting a local Dask cluster", timeout=60)
    first_output = time.monotonic() - clicked
    wait_until_done(page, timeout=180)
    ended = time.monotonic() - clicked
    page.screenshot(path=str(artifacts / f"{app}-cold-start.png"), full_page=True)
    (artifacts / "timing.json").write_text(json.dumps({"first_output_s": round(first_output, 3),
                                                      "cell_end_s": round(ended, 3)}))
    texts = output_texts(page)
    joined = "\n".join(texts)
    assert joined.index("Starting a local Dask cluster (") < joined.index("Started a local Dask cluster")
    assert texts[-1].strip() == "28"
