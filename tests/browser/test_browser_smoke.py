"""The browser fixtures themselves: a notebook opens, runs, and shows its output in both apps."""

from __future__ import annotations

import pytest
from jupyter_page import open_and_run_all, output_texts, wait_for_text, wait_until_done

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.mark.parametrize("app", ["lab", "notebook7"])
def test_a_notebook_runs_in_the_page(app, request, page, artifacts):
    server = request.getfixturevalue(app)
    open_and_run_all(page, server, "smoke.ipynb", ["print('hello from', 6 * 7)"])
    wait_for_text(page, "hello from 42")
    wait_until_done(page)
    page.screenshot(path=str(artifacts / f"{app}.png"))
    assert any("hello from 42" in t for t in output_texts(page))
    if app == "lab":  # Notebook 7 itself logs a settings-schema error on load here
        assert not page.errors
