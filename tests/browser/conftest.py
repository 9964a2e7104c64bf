"""Fixtures for tests that drive a real page: JupyterLab (or Notebook 7) and Debian's Chromium.

Reusable by any test under ``tests/browser/`` that needs a notebook open in a browser (the
helpers are in ``jupyter_page.py``)::

    @pytest.mark.browser
    def test_something(lab, page, artifacts):  # from jupyter_page import ...
        path = write_notebook(lab.root / "demo.ipynb", ["%load_ext ipydistribute", "1 + 1"])
        open_notebook(page, lab, path.name)
        run_all(page)
        wait_for_text(page, "2")
        page.screenshot(path=str(artifacts / "demo.png"))

``lab`` is JupyterLab on a free port of 127.0.0.1 with a random token, serving a fresh
directory (``lab.root``); ``notebook7`` is the same for ``jupyter notebook``. Each starts once
per session and is stopped (with its kernels) at the end; after each test every kernel it
started is shut down, so tests share the server but no kernel or cluster. (Once per module, the
starts and stops, a stop up to 21 s, made tests/browser 328 s against 217 s, on the same loaded
machine.) Give each test's notebook a name of its own. Jupyter's config, runtime,
IPython and workspace directories are private to the server, so no saved workspace or setting
leaks in.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_page import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_FLAGS,
    JupyterServer,
    start_server,
    stop_server,
)

#: The servers started so far in this session (their kernels are shut down after each test).
_RUNNING: list[JupyterServer] = []


def _server(app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make system-deps` (apt-get install chromium)")
    root = tmp_path_factory.mktemp(f"{app}-root")
    server = start_server(app, root)
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.remove(server)
        stop_server(server)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """JupyterLab on a free port of 127.0.0.1 with a random token (once per session)."""
    yield from _server("lab", tmp_path_factory)


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """Jupyter Notebook 7 on a free port of 127.0.0.1 with a random token (once per session)."""
    yield from _server("notebook", tmp_path_factory)


@pytest.fixture(autouse=True)
def _no_kernel_left() -> Iterator[None]:
    """After each test, the shared servers' kernels (and their clusters) are shut down."""
    yield
    for server in list(_RUNNING):
        server.shut_down_kernels()


# Once per module, not per session: Playwright's sync API keeps an event loop of its own while
# it runs, and the tests after the browser ones run asyncio and tornado loops of theirs.
@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Chromium (Debian's, through Playwright) with a fresh profile."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: `make system-deps` (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A new tab; page errors are collected in ``page.errors`` (a list of strings)."""
    tab = browser_context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    try:
        yield tab
    finally:
        tab.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """A directory under ``test-artifacts/`` (gitignored) for this test's screenshots."""
    path = ARTIFACTS / request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    path.mkdir(parents=True, exist_ok=True)
    return path
