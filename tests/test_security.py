"""Secrets stay secret: a notebook that connects to a TLS scheduler, runs a cell, shows the
cluster and fails once with the wrong certificate is executed by a real kernel and saved; no
certificate or key material appears in any output or in the saved file (paths may).

Coordinated with the cluster tests, not repeated here: every listening socket of the embedded
cluster on 127.0.0.1 (test_cluster.py), a TLS scheduler refusing a client without a valid
certificate, and a pasted key never echoed (test_remote.py, test_cluster.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_remote import DaskProcesses, make_certificates

pytestmark = pytest.mark.slow


def _secret_lines(paths: list[Path]) -> set[str]:
    """The base64 body lines of PEM files: any of them in an output would be a leak."""
    lines: set[str] = set()
    for path in paths:
        for line in path.read_text().splitlines():
            if line and not line.startswith("-----") and len(line) >= 40:
                lines.add(line)
    return lines


def test_certificates_and_keys_never_reach_outputs_or_the_saved_notebook(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates: apt-get install openssl")
    c = make_certificates(tmp_path / "certs")
    common = ["--tls-ca-file", str(c["ca"])]
    procs = DaskProcesses(tmp_path, tls=["--protocol", "tls", *common, "--tls-cert", str(c["scheduler"]),
                                         "--tls-key", str(c["scheduler-key"])],
                          worker_tls=[*common, "--tls-cert", str(c["worker"]), "--tls-key", str(c["worker-key"])])
    try:
        good = f"--tls-ca-file {c['ca']} --tls-cert {c['client']} --tls-key {c['client-key']}"
        bad = f"--tls-ca-file {c['ca']} --tls-cert {c['stranger']} --tls-key {c['stranger-key']} --timeout 3"
        cells = [
            "%load_ext ipydistribute",
            f"%cluster connect {procs.address} {bad}",  # refused: the error must not quote the key
            f"%cluster connect {procs.address} {good}",
            "import ipydistribute\nclient = ipydistribute.get_client()\nclient.wait_for_workers(1, timeout=60)\nclient",
            "%cluster",
            "%%distribute x in range(3)\nprint('item', x)\nx * 2",
            "client.security",
            "%%distribute x in range(2)\n1 / 0",
        ]
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
        NotebookClient(nb, timeout=180, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        saved = tmp_path / "secured.ipynb"
        nbformat.write(nb, saved)
    finally:
        procs.close()

    outputs = [nb.cells[i].outputs for i in range(len(nb.cells))]
    assert "refused this client's TLS credentials" in str(outputs[1]), "the stranger's certificate was accepted"
    assert "UsageError" not in str(outputs[2]) and not any(o.get("output_type") == "error" for o in outputs[2])
    assert "[0, 2, 4]" in str(outputs[5])
    text = saved.read_text()
    assert "-----BEGIN" not in text, "PEM material in the saved notebook"
    leaked = [line for line in _secret_lines([c[k] for k in c if k != "ca"] + [c["ca"]]) if line in text]
    assert not leaked, f"{len(leaked)} lines of certificate or key material in the saved notebook"
