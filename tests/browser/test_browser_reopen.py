"""A notebook saved after its kernel shut down, reopened: pictures, no dead widgets.

The cluster widget (and any run still going) replaces itself with its static HTML when the
kernel is asked to shut down, so the saved notebook shows the table, not "Error displaying
widget: model not found".
"""

from __future__ import annotations

import json

import pytest
from jupyter_page import open_and_run_all, output_texts, wait_until_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = ["%load_ext ipydistribute", "%cluster start --workers 1",
         "%%distribute x in range(4) --reduce sum\nx"]


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_save_shut_down_and_reopen_shows_no_dead_widget(app, request, page, artifacts):
    server = request.getfixturevalue(app)
    path = open_and_run_all(page, server, f"reopen-{app}.ipynb", CELLS)
    wait_until_done(page, timeout=180)
    page.wait_for_selector(".ipydistribute-run[data-state='finished']", timeout=60_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.shutdown()")
    page.wait_for_function("""() => [...document.querySelectorAll('.jp-OutputArea-output')]
                               .some(e => e.innerText.includes('closed') || e.innerText.includes('running'))
                               && !document.querySelector('.jp-OutputArea-output .widget-button')""",
                           timeout=30_000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    saved = json.loads(path.read_text())
    kinds = [k for cell in saved["cells"] for out in cell.get("outputs", []) for k in out.get("data", {})]
    assert "application/vnd.jupyter.widget-view+json" not in kinds

    page.goto(server.page_url(path.name))  # reopened (a new kernel starts: no old model in it)
    page.wait_for_selector(".jp-OutputArea-output", timeout=90_000)
    page.wait_for_selector(".ipydistribute-run img.ipd-picture", timeout=30_000)
    page.screenshot(path=str(artifacts / f"{app}-reopened.png"), full_page=True)
    text = "\n".join(output_texts(page))
    assert "Error displaying widget" not in text and "model not found" not in text
    assert "cpu-0" in text  # the cluster's table, as it was last seen
    assert (len(path.read_bytes())) < 100_000
