"""``%cluster gateway`` against a real dask-gateway-server on 127.0.0.1 (local process backend,
its bundled proxy), driven from real kernels as a notebook would."""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_servers import http_status, start_gateway, wait_until
from kernel_helpers import Kernel

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(600)]

PASSWORD = "test-password"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, url = start_gateway(tmp_path_factory.mktemp("gateway"), PASSWORD)
    yield url
    server.stop()


def login_env(url: str, user: str, password: str = PASSWORD) -> dict[str, str]:
    """dask-gateway's own configuration, as a deployment sets it for its users."""
    return {"DASK_GATEWAY__ADDRESS": url, "DASK_GATEWAY__AUTH__TYPE": "basic",
            "DASK_GATEWAY__AUTH__KWARGS__USERNAME": user, "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": password}


def clusters_of(url: str, user: str) -> dict[str, Any]:
    """The user's active clusters, asked of the gateway's REST API directly."""
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(f"{url}/api/v1/clusters/", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return dict(json.loads(reply.read()))


def one_line_error(reply: Any, *words: str) -> str:
    assert reply.status == "error" and reply.ename == "UsageError", reply.text
    text = reply.text.strip()
    assert len(text.splitlines()) == 1 and all(w in text for w in words), text
    return text


CURRENT_NAME = "from ipydistribute.core import cluster as _c\n_c.current(start=False)[0].cluster.name"


def test_a_gateway_cluster_runs_cells_scales_within_limits_and_is_shut_down(gateway: str, tmp_path: Path) -> None:
    with Kernel(login_env(gateway, "alice")) as kernel:
        kernel.ok("%load_ext ipydistribute")
        shown = kernel.ok("%cluster gateway --workers 2", timeout=180)
        html = [o["content"]["data"]["text/html"] for o in shown.outputs if o["msg_type"] == "display_data"]
        assert html and "dask-gateway cluster" in html[0], shown.text
        name = kernel.ok(CURRENT_NAME).value().strip("'")
        assert list(clusters_of(gateway, "alice")) == [name]

        kernel.ok("import ipydistribute\nipydistribute.get_client().wait_for_workers(2, timeout=120)", timeout=180)
        ran = kernel.ok("%%distribute x in range(6) --view none\nprint('item', x)\nx * x")
        assert "[0, 1, 4, 9, 16, 25]" in ran.text and "item 3" in ran.text, ran.text

        link = kernel.ok("ipydistribute.get_client().dashboard_link").value().strip("'")
        assert link == f"{gateway}/clusters/{name}/status"  # through the gateway's proxy
        assert http_status(link) == 200

        # the widget's controls act through the gateway, and show its refusal
        clicked = kernel.ok("widget = ipydistribute.status()\nwidget._scale_n.value = 1\nwidget._scale.click()\n"
                            "first = widget._message.value\nwidget._scale_n.value = 5\nwidget._scale.click()\n"
                            "first, widget._message.value").value()
        assert "scale: done" in clicked and "scale failed: the gateway refused 5 workers" in clicked, clicked

        # the deployment's limits: 2 workers a cluster, 1 cluster a user
        one_line_error(kernel.run("%cluster scale 5"), "gateway refused 5 workers")
        one_line_error(kernel.run("%cluster gateway --workers 1"), "alice already runs 1 cluster")
        kernel.ok("%cluster adapt 0 2")

        stopped = kernel.ok("%cluster stop")
        assert "stopped" in stopped.text
        wait_until(lambda: not clusters_of(gateway, "alice"), 60, "the stopped cluster still ran")

        # memory: 1 GiB workers leave room for one beside the scheduler; nothing is left behind
        refused = one_line_error(kernel.run("%cluster gateway --option worker_memory=1 --workers 2", timeout=180),
                                 "gateway refused 2 workers", "the new cluster was shut down")
        assert "instead" not in refused, refused
        assert not clusters_of(gateway, "alice")
        # mistakes are one line each
        one_line_error(kernel.run("%cluster gateway --option colour=red"), "no cluster option 'colour'",
                       "worker_memory")
        one_line_error(kernel.run("%cluster gateway --option worker_memory=64"), "worker_memory")
        one_line_error(kernel.run("%cluster gateway --connect nosuch"), "no running cluster 'nosuch'")
        one_line_error(kernel.run("%cluster gateway http://127.0.0.1:9 --list"), "cannot reach the gateway")
        one_line_error(kernel.run("import os\nos.environ['DASK_GATEWAY__AUTH__KWARGS__PASSWORD'] = 'wrong'\n"
                                  "import dask, dask.config\ndask.config.refresh()\n%cluster gateway --list"),
                       "refused this login (401)")


def test_a_kernel_restart_or_shutdown_shuts_its_gateway_cluster_down_unless_kept(gateway: str) -> None:
    env = login_env(gateway, "bob")
    with Kernel(env) as kernel:
        kernel.ok("%load_ext ipydistribute\n%cluster gateway --adapt 0 1", timeout=180)
        assert len(clusters_of(gateway, "bob")) == 1
        kernel.km.restart_kernel(now=False)
        kernel.kc.wait_for_ready(timeout=60)
        wait_until(lambda: not clusters_of(gateway, "bob"), 60, "a kernel restart left its gateway cluster")

        kernel.ok("%load_ext ipydistribute\n%cluster gateway --keep --workers 1", timeout=180)
        kept = kernel.ok(CURRENT_NAME).value().strip("'")
        assert "disconnected" in kernel.ok("%cluster stop").text
        assert list(clusters_of(gateway, "bob")) == [kept]
        kernel.ok("%cluster gateway --connect " + kept + " --keep")
    assert list(clusters_of(gateway, "bob")) == [kept], "a kernel shutdown stopped a kept cluster"

    with Kernel(env) as kernel:
        kernel.ok("%load_ext ipydistribute")
        assert kept in kernel.ok("%cluster gateway --list").text
        # a refused request on a cluster reconnected to lets it go, never shuts it down
        one_line_error(kernel.run(f"%cluster gateway --connect {kept} --workers 5"), "gateway refused 5 workers")
        assert list(clusters_of(gateway, "bob")) == [kept]
        kernel.ok(f"%cluster gateway --connect {kept}")  # reconnected without --keep: this notebook owns it
        kernel.ok("import ipydistribute\nipydistribute.get_client().wait_for_workers(1, timeout=120)", timeout=180)
        assert "[1, 2, 3]" in kernel.ok("%%distribute x in range(3) --view none\nx + 1").text
    wait_until(lambda: not clusters_of(gateway, "bob"), 60, "a kernel shutdown left its gateway cluster")
