"""The run view's Stop button while the cell blocks, in JupyterLab 4 and Notebook 7.

The click is handled in the page's comm subshell, not after the cell: the view says
"stopping" at once, the run is cancelled, and the cell ends with one line. The seconds from
the click to the end of the cell go to ``test-artifacts/`` (a figure for the report, not a
pass mark: the machine is shared).
"""

from __future__ import annotations

import json
import time

import pytest
from jupyter_page import open_and_run_all, output_texts, wait_until_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "%load_ext ipydistribute",
    "%cluster start --workers 2",
    "%%distribute x in range(40) --batch 1\nimport time\ntime.sleep(0.5)\nx",
    "%%distribute x in range(4) --batch 1\nif x == 2:\n    raise ValueError('bad item')\nx",
]


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_stop_button_cancels_a_blocking_cell(app, request, page, artifacts):
    server = request.getfixturevalue(app)
    open_and_run_all(page, server, f"stop-{app}.ipynb", CELLS)
    button = page.locator(".ipydistribute-run button", has_text="Stop run")
    button.wait_for(timeout=120_000)
    page.wait_for_function(
        """() => { const row = document.querySelector('.ipydistribute-run .ipd-groups tr[data-group="map"]');
                   return row && Number(row.dataset.done) > 0; }""", timeout=60_000)
    clicked = time.monotonic()
    button.click()
    # "stopping" at once; the run may even have ended by the time the page is looked at.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.ipydistribute-run .ipd-state')]
                 .some(e => ['stopping', 'cancelled'].includes(e.innerText.trim()))""", timeout=30_000)
    stopping = time.monotonic() - clicked
    page.screenshot(path=str(artifacts / f"{app}-stopping.png"))
    wait_until_done(page, timeout=60)
    ended = time.monotonic() - clicked
    page.screenshot(path=str(artifacts / f"{app}-stopped.png"), full_page=True)
    (artifacts / "timing.json").write_text(json.dumps({"click_to_stopping_s": round(stopping, 3),
                                                      "click_to_cell_end_s": round(ended, 3)}))
    last = output_texts(page)[-1]
    assert "cell 3 stopped:" in last and "tasks left on the cluster: 0" in last, last  # In [3]
    done = int(last.split("stopped: ")[1].split("/")[0])
    assert done < 40  # cancelled, not run to its end
    assert "Traceback" not in last and "KeyboardInterrupt" not in last
    assert len(last.strip().splitlines()) == 1

    # Run All stopped at the stopped cell; a failing item next shows no Dask log, no engine frame.
    page.evaluate("""() => { const nb = window.jupyterapp.shell.currentWidget.content; nb.activeCellIndex = 3;
                             window.jupyterapp.commands.execute('notebook:run-cell'); }""")
    wait_until_done(page, timeout=120)
    failed = output_texts(page)[-1]
    page.screenshot(path=str(artifacts / f"{app}-failed-item.png"), full_page=True)
    assert "bad item" in failed and "CellError" in failed
    assert "distributed." not in failed and "ipydistribute/" not in failed and "threading.py" not in failed
