"""A class on JupyterHub: a real hub (its proxy from npm, local process spawner, a test login) with
dask-gateway as a hub service that logs users in through the hub. Two users each run the class
notebook in their own server, over the hub's proxy, as JupyterLab does."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from deploy_servers import DEPLOY, start_hub, wait_until
from hub_client import HubUser, RemoteKernel

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(900)]

NOTEBOOK = DEPLOY / "hub" / "class_notebook.ipynb"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    password = secrets.token_hex(8)
    server, url, _ = start_hub(tmp_path_factory.mktemp("hub"), password)
    yield url, password
    server.stop(timeout=30)


def run_notebook(kernel: RemoteKernel, path: Path) -> list[str]:
    """Each code cell of the notebook in turn, as Run All does; the text each printed."""
    texts = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            texts.append(kernel.ok(cell.source, timeout=300).text)
    return texts


def one_line_error(reply: object, *words: str) -> None:
    assert reply.status == "error" and reply.ename == "UsageError", reply.text  # type: ignore[attr-defined]
    text = reply.text.strip()  # type: ignore[attr-defined]
    assert len(text.splitlines()) == 1 and all(w in text for w in words), text


CURRENT_NAME = "from ipydistribute.core import cluster as _c\n_c.current(start=False)[0].cluster.name"
DASHBOARD = "import ipydistribute\nipydistribute.get_client().dashboard_link"


def test_two_students_get_their_own_gateway_clusters_through_the_hub(hub: tuple[str, str]) -> None:
    url, password = hub
    with pytest.raises(AssertionError, match="could not log in"):
        HubUser(url, "alice", "not-the-password")
    alice, bob = HubUser(url, "alice", password), HubUser(url, "bob", password)
    for user in (alice, bob):  # both log in and start at once, as a class does
        user.request_server()
    for user in (alice, bob):
        user.wait_server()
    with alice.kernel() as a_kernel, bob.kernel() as b_kernel, ThreadPoolExecutor(2) as pool:
        a_run, b_run = (pool.submit(run_notebook, kernel, NOTEBOOK) for kernel in (a_kernel, b_kernel))
        a_out, b_out = a_run.result(), b_run.result()
        assert "['alice: 0', 'alice: 1', 'alice: 4', 'alice: 9']" in a_out[-1], a_out
        assert "['bob: 0', 'bob: 1', 'bob: 4', 'bob: 9']" in b_out[-1], b_out
        assert "squaring 2" in a_out[-1]
        a_name = a_kernel.ok(CURRENT_NAME).value().strip("'")
        b_name = b_kernel.ok(CURRENT_NAME).value().strip("'")
        assert a_name != b_name

        # each sees only their own cluster, and cannot use the other's
        listed = a_kernel.ok("%cluster gateway --list").text
        assert a_name in listed and b_name not in listed
        one_line_error(a_kernel.run(f"%cluster gateway --connect {b_name}"), "no running cluster", b_name)
        assert a_kernel.ok(CURRENT_NAME).value().strip("'") == a_name  # the failed attempt changed nothing

        # the dashboard opens through the hub's proxy
        link = a_kernel.ok(DASHBOARD).value().strip("'")
        assert link == f"/services/dask-gateway/clusters/{a_name}/status"
        page = alice.get(link)
        assert page.status_code == 200 and "Dask" in page.text, page.status_code

        # the gateway's limits, one line each: workers per cluster (cores, memory) and clusters per user
        one_line_error(a_kernel.run("%cluster scale 5"), "gateway refused 5 workers")
        one_line_error(a_kernel.run("%cluster gateway --workers 1"), "alice already runs 1 cluster")
        a_kernel.ok("%cluster stop")
        one_line_error(a_kernel.run("%cluster gateway --option worker_memory=1 --workers 2", timeout=300),
                       "gateway refused 2 workers")

        # the embedded cluster's dashboard through jupyter-server-proxy in the user's own server
        b_kernel.ok("%cluster stop\n%cluster start --workers 1 --memory-limit 512MiB", timeout=300)
        link = b_kernel.ok(DASHBOARD).value().strip("'")
        assert re.fullmatch(r"/user/bob/proxy/\d+/status", link), link
        page = bob.get(link)
        assert page.status_code == 200 and "Dask" in page.text, page.status_code
        assert alice.get(link).status_code in (302, 403), "alice opened bob's dashboard"
    # closing the kernels shut their gateway clusters down
    for user, name in ((alice, a_name), (bob, b_name)):
        wait_until(lambda u=user: u.gateway_clusters() == {}, 60,
                   f"{user.name}'s gateway cluster {name} outlived the kernel")
