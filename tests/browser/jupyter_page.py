"""Driving a notebook page in JupyterLab or Notebook 7 (helpers for the browser tests).

Import them in a test under ``tests/browser/`` as ``from jupyter_page import ...``; the
fixtures that start the server and the browser are in ``conftest.py`` next to this file.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterServer:
    """A running Jupyter server: where it listens, its token, the directory it serves."""

    app: str  # "lab" or "notebook"
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log: Path

    def page_url(self, notebook: str) -> str:
        """The address that opens ``notebook`` (a path relative to ``root``) in this app."""
        if self.app == "lab":
            return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"
        return f"{self.url}/notebooks/{notebook}?token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        headers = {"Authorization": f"token {self.token}"}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
            return json.loads(body) if body else None

    def shut_down_kernels(self, timeout: float = 60) -> None:
        """Shut down every kernel of the server (and with it the kernel's cluster): the next test
        starts from a server with no kernel busy or holding memory."""
        for kernel in self.api("/api/kernels"):
            self.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        wait_until(lambda: not self.api("/api/kernels"), timeout, f"jupyter {self.app} without kernels")


def start_server(app: str, root: Path) -> JupyterServer:
    """Start ``jupyter lab`` or ``jupyter notebook`` serving ``root``; wait until it answers."""
    port, token = _free_port(), secrets.token_hex(16)
    private = root.parent / f".{app}-jupyter"
    env = dict(os.environ)
    env.update(JUPYTER_CONFIG_DIR=str(private / "config"),
               JUPYTER_RUNTIME_DIR=str(private / "runtime"),
               IPYTHONDIR=str(private / "ipython"), JUPYTER_PLATFORM_DIRS="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("JUPYTER_DATA_DIR", None)  # the venv's data dir holds the lab and widget extensions
    labconfig = private / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    # No "get notified about Jupyter news?" popup over the screenshots.
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    log = root.parent / f"{app}-server.log"
    command = [sys.executable, "-m", "jupyterlab" if app == "lab" else "notebook",
               "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
               f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.port_retries=0", "--ServerApp.disable_check_xsrf=False",
               f"--LabApp.workspaces_dir={private / 'workspaces'}"]
    # window.jupyterapp: run commands and read the kernel's status without clicking through menus.
    command.append("--LabApp.expose_app_in_browser=True" if app == "lab"
                   else "--JupyterNotebookApp.expose_app_in_browser=True")
    with open(log, "wb") as out:
        # Its own process group, so stopping it stops its kernels and no one else's processes.
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   cwd=root, start_new_session=True)
    server = JupyterServer(app, f"http://127.0.0.1:{port}", token, root, process, log)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter {app} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            server.api("/api/status")
            return True
        except OSError:
            return False

    try:
        wait_until(answers, 90, f"jupyter {app} answers", log=lambda: log.read_text()[-2000:], interval=0.3)
    except AssertionError:
        stop_server(server)
        raise
    return server


def stop_server(server: JupyterServer) -> None:
    """Stop the server and every process it started (kernels, their local clusters)."""
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(10)


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write a notebook of code cells (Python 3 kernel) and return its path."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)
    return path


def open_notebook(page: Any, server: JupyterServer, notebook: str, timeout: float = 90) -> None:
    """Open ``notebook`` and wait until its kernel is idle."""
    page.goto(server.page_url(notebook))
    page.wait_for_selector(".jp-Notebook", timeout=timeout * 1000)
    wait_for_idle_kernel(page, timeout)


def open_and_run_all(page: Any, server: JupyterServer, name: str, cells: list[str]) -> Path:
    """Write a notebook of ``cells`` as ``name`` in the server's folder, open it, wait for its
    kernel, and start Run All (not awaited); returns the notebook's path."""
    path = write_notebook(server.root / name, cells)
    open_notebook(page, server, path.name)
    run_all(page)
    return path


def kernel_status(page: Any) -> str | None:
    """The status of the open notebook's kernel (idle, busy, ...), or None before it exists."""
    return page.evaluate(_KERNEL_STATUS)  # type: ignore[no-any-return]


_KERNEL_STATUS = """() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = widget && widget.sessionContext && widget.sessionContext.session
                   && widget.sessionContext.session.kernel;
    return kernel ? kernel.status : null;
}"""


def wait_for_idle_kernel(page: Any, timeout: float = 90) -> None:
    """Wait until the open notebook's kernel is started and idle."""
    page.wait_for_function(f"() => ({_KERNEL_STATUS})() === 'idle'", timeout=timeout * 1000)


def run_all(page: Any) -> None:
    """Run every cell of the open notebook (the command behind Run > Run All Cells)."""
    # Not awaited: the command's promise resolves only when every cell has finished.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def wait_until_done(page: Any, timeout: float = 120) -> None:
    """Wait until no cell is queued or running (no ``[*]`` prompt) and the kernel is idle."""
    page.wait_for_function(
        f"""() => ({_KERNEL_STATUS})() === 'idle'
                 && ![...document.querySelectorAll('.jp-InputPrompt')]
                    .some(e => e.innerText.includes('*'))""", timeout=timeout * 1000)


def wait_for_text(page: Any, text: str, timeout: float = 60) -> None:
    """Wait until ``text`` appears in some cell's output area."""
    page.wait_for_function(
        """(text) => [...document.querySelectorAll('.jp-OutputArea-output')]
                     .some(e => e.innerText.includes(text))""",
        arg=text, timeout=timeout * 1000)


def output_texts(page: Any) -> list[str]:
    """The visible text of every output area, in order."""
    return list(page.eval_on_selector_all(".jp-OutputArea-output",
                                          "els => els.map(e => e.innerText)"))
