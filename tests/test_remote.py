"""``%cluster connect`` to real ``dask scheduler`` / ``dask worker`` processes, over TCP and TLS.

Each process runs in its own process group on 127.0.0.1 with free ports; the test kills exactly
the groups it started. The TLS certificates are made here with the ``openssl`` command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_procs import scheduler_address
from IPython.core.error import UsageError
from waiting import wait_until

from ipydistribute.core import cluster as cluster_mod
from ipydistribute.core.cluster_snapshot import take

pytestmark = pytest.mark.slow

DASK = str(Path(sys.executable).with_name("dask"))
WHO = "from distributed import get_worker\nget_worker().name"


class DaskProcesses:
    """A scheduler and one worker as OS processes; ``close`` ends their process groups."""

    def __init__(self, tmp: Path, tls: list[str] | None = None, worker_tls: list[str] | None = None):
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        scheduler_file = tmp / "scheduler.json"
        self._spawn([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                     "127.0.0.1:0", "--no-show", "--scheduler-file", str(scheduler_file), *(tls or [])],
                    "scheduler.log")
        try:
            self.address = self._wait_for(scheduler_file)
            self._spawn([DASK, "worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1",
                         "--nthreads", "1", "--name", "remote-0", "--no-dashboard", "--memory-limit", "1GiB",
                         *(worker_tls or tls or [])], "worker.log")
        except BaseException:
            self.close()
            raise

    def _spawn(self, args: list[str], log: str) -> None:
        with open(self.tmp / log, "ab") as out:
            self.procs.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                               start_new_session=True, cwd=self.tmp))

    def _wait_for(self, scheduler_file: Path, timeout: float = 60) -> str:
        wait_until(lambda: scheduler_address(scheduler_file) or self.procs[0].poll() is not None, timeout,
                   "the scheduler's file", log=lambda: self.log("scheduler.log"))
        if self.procs[0].poll() is not None:
            raise RuntimeError(f"dask scheduler did not start:\n{self.log('scheduler.log')}")
        return scheduler_address(scheduler_file)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, and a certificate signed by it for each of the scheduler, the worker and a client."""
    folder.mkdir()
    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=ipydistribute test CA")
    san = folder / "san.ext"
    san.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    paths = {"ca": ca}
    for who in ("scheduler", "worker", "client"):
        key, csr, cert = folder / f"{who}.key", folder / f"{who}.csr", folder / f"{who}.pem"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                "-subj", f"/CN={who}")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(cert), "-days", "2", "-extfile", str(san))
        paths[who], paths[f"{who}-key"] = cert, key
    # a client whose certificate no CA of the scheduler signed
    paths["stranger"], paths["stranger-key"] = folder / "stranger.pem", folder / "stranger.key"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(paths["stranger-key"]),
            "-out", str(paths["stranger"]), "-days", "2", "-subj", "/CN=stranger")
    return paths


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory: Any) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path_factory.mktemp("tcp"))
    yield procs
    procs.close()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: Any) -> dict[str, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates: apt-get install openssl")
    return make_certificates(tmp_path_factory.mktemp("tls") / "certs")


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: Any, certificates: dict[str, Path]) -> Iterator[DaskProcesses]:
    c = certificates
    common = ["--tls-ca-file", str(c["ca"])]
    procs = DaskProcesses(tmp_path_factory.mktemp("tls-procs"),
                          tls=["--protocol", "tls", *common, "--tls-cert", str(c["scheduler"]),
                               "--tls-key", str(c["scheduler-key"])],
                          worker_tls=[*common, "--tls-cert", str(c["worker"]), "--tls-key", str(c["worker-key"])])
    yield procs
    procs.close()


def test_connect_runs_cells_on_the_remote_workers(ip: Any, detached: None, tcp_cluster: DaskProcesses,
                                                  capsys: Any) -> None:
    ip.run_line_magic("cluster", f"connect {tcp_cluster.address}")
    handle = cluster_mod.chosen()
    assert handle is not None and handle.kind == "remote" and handle.address == tcp_cluster.address
    handle.client.wait_for_workers(1, timeout=60)
    out = capsys.readouterr().out
    assert "remote scheduler" in out and tcp_cluster.address in out
    names = ip.run_cell_magic("distribute", "x in range(6) --batch 1 --view none", WHO)
    assert names == ["remote-0"] * 6
    with pytest.raises(UsageError, match="no worker offers GPU=1"):
        ip.run_cell_magic("distribute", "x in range(2) --gpu 1 --view none", "x")


def test_a_remote_cluster_cannot_be_scaled_and_the_widget_says_why(ip: Any, detached: None,
                                                                   tcp_cluster: DaskProcesses, capsys: Any) -> None:
    from ipydistribute.widgets.cluster_widget import ClusterWidget

    handle = cluster_mod.connect(tcp_cluster.address)
    for line in ("scale 3", "adapt 1 3"):
        with pytest.raises(UsageError, match="was started elsewhere: scale it with the tool that started it"):
            ip.run_line_magic("cluster", line)
    view = ClusterWidget(handle, interval=0.2)
    assert view._scale.disabled and view._adapt.disabled and view._scale_n.disabled
    assert "started elsewhere" in view._reason.value
    assert not view._restart.disabled and view._stop.description == "Disconnect"
    assert "remote-0" in view._table.value or take(handle).workers == ()
    view._stop.click()  # disconnects: the remote scheduler and worker keep running
    view.join(30)
    assert not view.poller.thread.is_alive() and cluster_mod.chosen() is None
    view.close()
    assert all(p.poll() is None for p in tcp_cluster.procs)
    again = cluster_mod.connect(tcp_cluster.address)
    again.client.wait_for_workers(1, timeout=30)
    assert ip.run_line_magic("distribute", "x + 1 for x in range(3)") == [1, 2, 3]


def test_tls_with_the_right_certificates_runs_cells(ip: Any, detached: None, tls_cluster: DaskProcesses,
                                                   certificates: dict[str, Path]) -> None:
    c = certificates
    assert tls_cluster.address.startswith("tls://127.0.0.1:")
    ip.run_line_magic("cluster", f"connect {tls_cluster.address} --tls-ca-file {c['ca']} "
                                 f"--tls-cert {c['client']} --tls-key {c['client-key']}")
    handle = cluster_mod.chosen()
    assert handle is not None
    handle.client.wait_for_workers(1, timeout=60)
    assert ip.run_cell_magic("distribute", "x in range(4) --batch 1 --view none", WHO) == ["remote-0"] * 4


def test_tls_without_a_client_certificate_is_refused_clearly(ip: Any, detached: None,
                                                            tls_cluster: DaskProcesses,
                                                            certificates: dict[str, Path]) -> None:
    c = certificates
    attempts = {
        "no certificate": f"--tls-ca-file {c['ca']}",
        "a certificate the scheduler's CA did not sign": f"--tls-ca-file {c['ca']} --tls-cert {c['stranger']} "
                                                         f"--tls-key {c['stranger-key']}",
    }
    for what, options in attempts.items():
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("cluster", f"connect {tls_cluster.address} {options} --timeout 3")
        message = str(info.value)
        assert "\n" not in message and tls_cluster.address in message, what
        assert "--tls-cert" in message and "--tls-key" in message, what
        assert "BEGIN" not in message, what
        assert cluster_mod.chosen() is None, what
    with pytest.raises(UsageError, match="cannot reach the scheduler|refused"):  # TLS spoken to a TCP port
        ip.run_line_magic("cluster", f"connect tcp://{tls_cluster.address[len('tls://'):]} --timeout 2")
