"""The live run view in a real page: JupyterLab 4 and Notebook 7, driven through the UI.

While a ``%%distribute`` cell of a few seconds runs, the page shows partial progress and a
graph with some tasks done and some not; at the end the static picture shows every task done
and the summary. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import pytest
from jupyter_page import open_and_run_all, wait_until_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "%load_ext ipydistribute",
    "%cluster start --workers 2",
    "%%distribute x in range(48) --batch 1 --reduce sum --name demo\n"
    "import time\ntime.sleep(0.2)\nx",
]

# The live picture (an ipywidgets Image): its size once the page has decoded it.
LIVE_PICTURE = """() => {
    const img = document.querySelector('.ipydistribute-run .ipd-live-picture');
    return img && img.complete ? img.naturalWidth : 0;
}"""

PROGRESS = """() => {
    const row = document.querySelector('.ipydistribute-run .ipd-groups tr[data-group="map"]');
    return row ? [Number(row.dataset.done), Number(row.dataset.total)] : null;
}"""



@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_live_view_moves_and_freezes_into_a_picture(app, request, page, artifacts):
    server = request.getfixturevalue(app)
    open_and_run_all(page, server, f"run-view-{app}.ipynb", CELLS)
    # A reduction submits its first map tasks, measures the first partial, then the rest: wait
    # until all 48 are on the cluster and some, not all, are done.
    page.wait_for_function(
        f"() => {{ const p = ({PROGRESS})(); return p && p[0] > 0 && p[0] < p[1] && p[1] == 48; }}",
        timeout=120_000)
    page.wait_for_function(f"() => ({LIVE_PICTURE})() > 0", timeout=30_000)
    done, total = page.evaluate(PROGRESS)
    page.locator(".ipydistribute-run").screenshot(path=str(artifacts / f"{app}-running.png"))
    assert 0 < done < total == 48

    wait_until_done(page)
    final = page.locator('.ipydistribute-run[data-state="finished"]')
    final.wait_for(timeout=30_000)
    final.screenshot(path=str(artifacts / f"{app}-final.png"))
    page.screenshot(path=str(artifacts / f"{app}-page.png"), full_page=True)
    assert final.locator("img.ipd-picture").evaluate("img => img.naturalWidth") > 0
    rows = final.locator(".ipd-groups tr")
    assert [rows.nth(i).get_attribute("data-done") == rows.nth(i).get_attribute("data-total")
            for i in range(rows.count())] == [True, True]  # map, the one reduce task of 48 small partials
    summary = final.locator(".ipd-summary").inner_text()
    assert "49 tasks" in summary and "workers busy" in summary
    assert "1128" in page.locator(".jp-OutputArea-output").all_inner_texts()[-1]  # sum(range(48))
    # (Notebook 7.6 itself logs "reading 'schema'" on some page loads: not ours.)
    assert not [e for e in page.errors if "require" in e or "view" in e or "widget" in e.lower()]
    assert "javascript error" not in page.content().lower()
