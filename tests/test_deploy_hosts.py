"""Several hosts: the scheduler, two workers and the kernel each in a network namespace of their
own with their own address and TLS certificate, so nothing shares the kernel's loopback. What
works on one machine works here: answers, labelled output, --gpu routing, item errors, a killed
worker, an interrupt, the live view's workers and the dashboard link."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_servers import wait_until
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from kernel_helpers import Kernel
from netns_hosts import Hosts, host_certificates, kernel_spec

pytestmark = [pytest.mark.deploy, pytest.mark.slow, pytest.mark.timeout(600)]

DASK = str(Path(sys.executable).with_name("dask"))
PRELOADS = ["--preload", "ipydistribute.core.worker_setup", "--preload", "ipydistribute.core.gpus"]


class HostKernel(Kernel):
    """A kernel on one of the hosts, reached over ipc sockets (files are shared, networks are not)."""

    def __init__(self, kernels: Path, ipc_dir: Path):
        super().__init__()
        self.km = KernelManager(kernel_name="netns", transport="ipc", ip=str(ipc_dir / "kernel"),
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Hosts, dict[str, Path]]]:
    made = Hosts(["scheduler", "w1", "w2", "kernel"], tmp_path)
    try:
        certs = host_certificates(tmp_path / "certs", made.addresses)
        tls = lambda who: ["--tls-ca-file", str(certs["ca"]), "--tls-cert", str(certs[who]),  # noqa: E731
                           "--tls-key", str(certs[f"{who}-key"])]
        sched = made.addresses["scheduler"]
        scheduler = made.start("scheduler", "scheduler", [
            DASK, "scheduler", "--protocol", "tls", "--host", sched, "--port", "8786",
            "--dashboard-address", f"{sched}:8787", "--no-show", *tls("scheduler")])
        for name, extra, env in (("w1", [], {}),
                                 ("w2", ["--resources", "GPU=1"], {"IPYDISTRIBUTE_SIMULATED_GPU": "1"})):
            made.start(name, name, [DASK, "worker", f"tls://{sched}:8786", "--host", made.addresses[name],
                                    "--name", name, "--nthreads", "1", "--memory-limit", "1GiB", *PRELOADS,
                                    *extra, *tls(name)], env=env)
        scheduler.wait_ready(lambda: "Scheduler at:" in scheduler.log(200), 60)
        yield made, certs
    finally:
        made.close()


def reply_after(kernel: Kernel, code: str, first_output: str, then: object, timeout: float = 120) -> object:
    """Run ``code``; once its output shows ``first_output``, call ``then()``; return the reply."""
    msg_id = kernel.submit(code)
    kernel.wait_for_output(msg_id, first_output, timeout=timeout)
    then()  # type: ignore[operator]
    return kernel.collect(msg_id, timeout)


def test_a_cluster_of_separate_hosts_behaves_as_on_one_machine(hosts: tuple[Hosts, dict[str, Path]],
                                                                 tmp_path: Path) -> None:
    made, certs = hosts
    a = made.addresses
    with HostKernel(kernel_spec(tmp_path, made, "kernel"), tmp_path) as kernel:
        host = kernel.ok("import socket, subprocess\nsubprocess.run(['ip', '-4', '-o', 'addr'], "
                         "capture_output=True, text=True).stdout").value()
        assert a["kernel"] in host and a["scheduler"] not in host  # the kernel is on a host of its own
        kernel.ok("%load_ext ipydistribute")
        kernel.ok(f"%cluster connect tls://{a['scheduler']}:8786 --tls-ca-file {certs['ca']} "
                  f"--tls-cert {certs['kernel']} --tls-key {certs['kernel-key']}")
        kernel.ok("import ipydistribute\nclient = ipydistribute.get_client()\nclient.wait_for_workers(2, timeout=120)")

        # answers and labelled output, from both hosts
        ran = kernel.ok("%%distribute x in range(8) --view none --batch 1\nimport distributed\n"
                        "print('on', distributed.get_worker().name)\nx * x")
        assert "[0, 1, 4, 9, 16, 25, 36, 49]" in ran.text, ran.text
        # each line says which item printed it, and on which host
        labels = re.findall(r"\[item (\d+) @ ([\d.]+):\d+\] on (w\d)", ran.text)
        assert sorted(int(item) for item, _, _ in labels) == list(range(8)), ran.text
        assert all(address == a[worker] for _, address, worker in labels), ran.text
        assert {worker for _, _, worker in labels} == {"w1", "w2"}, ran.text

        # --gpu goes to the worker that declares the resource
        gpu = kernel.ok("%%distribute x in range(4) --gpu 1 --view none\nimport distributed\n"
                        "distributed.get_worker().address")
        assert gpu.text.count(f"tls://{a['w2']}:") == 4, gpu.text

        # an item's error names the item and shows the cell's line
        failed = kernel.run("%%distribute x in range(4) --view none\n1 / (x - 2)")
        assert failed.status == "error" and "ZeroDivisionError" in failed.text and "2" in failed.text

        # the cluster widget and the live view list both workers at their own addresses
        table = kernel.ok("%cluster")
        html = " ".join(o["content"]["data"].get("text/html", "") for o in table.outputs
                        if o["msg_type"] == "display_data")
        assert f"tls://{a['w1']}:" in html and f"tls://{a['w2']}:" in html, html[:2000]
        live = kernel.ok("%%distribute x in range(6)\nx")
        shown = str([o["content"].get("data", {}) for o in live.outputs])
        assert "w1" in shown and "w2" in shown, shown[:3000]

        # the dashboard link is the scheduler's own address, and it answers from the kernel's host
        link = kernel.ok("client.dashboard_link").value().strip("'")
        assert link.startswith(f"http://{a['scheduler']}:8787"), link
        assert kernel.ok(f"import urllib.request\nurllib.request.urlopen({link!r}, timeout=10).status").value() == "200"

        # an interrupt stops the cell within seconds; the next cell runs
        started = time.monotonic()
        interrupted = reply_after(kernel, "%%distribute x in range(40) --view none --batch 1\nimport time\n"
                                  "print('start', x)\ntime.sleep(1)\nx", "start", kernel.interrupt)
        assert interrupted.ename == "RunStopped", interrupted.text  # type: ignore[attr-defined]
        assert time.monotonic() - started < 60
        assert "[0, 1, 2]" in kernel.ok("%%distribute x in range(3) --view none\nx").text

        # a worker host's processes killed mid-run: its items run again on the other host
        w1 = next(s for s in made.servers if s.name == "w1")
        done = reply_after(kernel, "%%distribute x in range(12) --view none --batch 1\nimport time, distributed\n"
                           "print('start', distributed.get_worker().name)\ntime.sleep(0.5)\nx",
                           "start w1", lambda: os.killpg(w1.proc.pid, signal.SIGKILL), timeout=240)
        assert "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]" in done.text, done.text  # type: ignore[attr-defined]
        names = "from ipydistribute.core import identity\nsorted(w['name'] for w in identity.workers(client).values())"
        wait_until(lambda: "w1" not in kernel.ok(names).value(), 60, "the killed worker still listed")
