"""Views on the pages people actually have: after a reload, and in a notebook saved elsewhere.

- After a page reload (same kernel), a new run's view renders: nothing it needs lives in the
  page (no BokehJS), so no "Click to show javascript error".
- A notebook executed elsewhere (nbclient, never signed: untrusted here) shows the run's
  picture, not the text left when a sanitizer drops SVG; and no "Error displaying widget".
"""

from __future__ import annotations

import pytest
from jupyter_page import open_notebook, output_texts, wait_until_done, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN = "%%distribute x in range(16) --batch 1 --reduce sum\nimport time\ntime.sleep(0.3)\nx"
CELLS = ["%load_ext ipydistribute", "%cluster start --workers 2", RUN]

LIVE_PICTURE = """() => {
    const img = document.querySelector('.ipydistribute-run .ipd-live-picture');
    return img && img.complete ? img.naturalWidth : 0;
}"""
SAVED_PICTURE = """() => [...document.querySelectorAll('.jp-OutputArea-output img')]
                      .filter(img => img.complete && img.naturalWidth > 0).length"""


def run_cell(page, index: int) -> None:
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                             nb.activeCellIndex = i;
                             window.jupyterapp.commands.execute('notebook:run-cell'); }""", index)


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_a_run_after_a_page_reload_renders_its_view(app, request, page, artifacts):
    server = request.getfixturevalue(app)
    path = write_notebook(server.root / f"reload-{app}.ipynb", CELLS)
    open_notebook(page, server, path.name)
    for i in range(len(CELLS)):
        run_cell(page, i)
        wait_until_done(page)
    page.reload()  # the same kernel, a fresh page
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget "
                           "&& window.jupyterapp.shell.currentWidget.sessionContext.session", timeout=90_000)
    run_cell(page, 2)
    page.wait_for_function(f"() => ({LIVE_PICTURE})() > 0", timeout=60_000)
    page.screenshot(path=str(artifacts / f"{app}-after-reload-running.png"), full_page=True)
    wait_until_done(page)
    page.locator('.ipydistribute-run[data-state="finished"]').wait_for(timeout=30_000)
    page.screenshot(path=str(artifacts / f"{app}-after-reload.png"), full_page=True)
    text = "\n".join(output_texts(page)).lower()
    assert "javascript error" not in text and "error displaying widget" not in text
    assert page.evaluate(SAVED_PICTURE) >= 1
    assert "120" in output_texts(page)[-1]  # sum(range(16))


def test_an_untrusted_notebook_from_elsewhere_shows_pictures(lab, page, artifacts):
    import nbclient
    import nbformat

    path = write_notebook(lab.root / "from-a-clone.ipynb", CELLS + ["%cluster stop"])
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(lab.root)}}).execute()
    nbformat.write(nb, path)  # not signed: JupyterLab opens it untrusted
    page.goto(lab.page_url(path.name))
    page.wait_for_selector(".jp-OutputArea-output", timeout=90_000)
    page.wait_for_function(f"() => ({SAVED_PICTURE})() >= 1", timeout=30_000)
    page.screenshot(path=str(artifacts / "untrusted.png"), full_page=True)
    text = "\n".join(output_texts(page))
    assert "map[0] map[1]" not in text  # what was left of an SVG graph
    assert "Error displaying widget" not in text

