"""The environment check on a real remote cluster: a ``dask worker`` in a separate venv that
lacks a module the cell imports gives a one-line error before any task runs; ``%cluster
install`` (Dask's PipInstall) puts a wheel there, and a version different from the kernel's is
a warning."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from waiting import wait_until

import ipydistribute
from tests.dask_procs import Procs, scheduler_address

MODULE = "envcheck_probe_mod"


def make_wheel(folder: Path, version: str) -> Path:
    """A minimal pure-Python wheel of MODULE (pip installs it offline)."""
    files = {f"{MODULE}/__init__.py": f'__version__ = "{version}"\nVALUE = "{version}"\n',
             f"{MODULE}-{version}.dist-info/METADATA":
                 f"Metadata-Version: 2.1\nName: {MODULE.replace('_', '-')}\nVersion: {version}\n",
             f"{MODULE}-{version}.dist-info/WHEEL":
                 "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = f"{MODULE}-{version}.dist-info/RECORD"
    lines = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha256={digest},{len(text.encode())}")
    files[record] = "\n".join([*lines, f"{record},,"]) + "\n"
    path = folder / f"{MODULE}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture
def kernel_has_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The kernel imports MODULE 1.2 from a folder that is neither the notebook's nor the workers'."""
    extra = tmp_path / "kernel-only"
    (extra / MODULE).mkdir(parents=True)
    (extra / MODULE / "__init__.py").write_text('__version__ = "1.2"\nVALUE = "1.2"\n')
    info = extra / f"{MODULE}-1.2.dist-info"  # installed, as pip leaves it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {MODULE.replace('_', '-')}\nVersion: 1.2\n")
    (info / "top_level.txt").write_text(f"{MODULE}\n")
    monkeypatch.syspath_prepend(str(extra))
    yield
    sys.modules.pop(MODULE, None)


@pytest.fixture
def remote(tmp_path: Path, cluster: Any) -> Iterator[Procs]:
    """A scheduler and one worker whose Python is a venv of its own that sees the shared packages
    and this tree (not the kernel's extra folder), made current in the notebook. The scheduler
    runs in that venv too: Dask's PipInstall installs on the scheduler as well."""
    venv = tmp_path / "worker-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = subprocess.run([python, "-c", where], check=True, capture_output=True, text=True).stdout.strip()
    assert site.startswith(str(venv))
    Path(site, "shared.pth").write_text(f"{sysconfig.get_paths()['purelib']}\n{os.getcwd()}\n")
    procs = Procs(tmp_path, env={"PYTHONPATH": os.getcwd()})
    procs.scheduler = procs._spawn(
        [python, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--dashboard-address", "127.0.0.1:0", "--no-show", "--scheduler-file", str(procs.scheduler_file)],
        "scheduler.log")
    wait_until(lambda: scheduler_address(procs.scheduler_file), 60, "the scheduler's file")
    procs.workers["venv"] = procs._spawn(
        [python, "-m", "distributed.cli.dask_worker", "--scheduler-file",
         str(procs.scheduler_file), "--name", "venv", "--host", "127.0.0.1", "--nthreads", "1",
         "--no-dashboard", "--no-nanny", "--death-timeout", "60"], "worker-venv.log")
    ipydistribute.use(None)  # so that connecting does not close the session's cluster
    try:
        client = ipydistribute.connect(procs.address)
        client.wait_for_workers(1, timeout=120)
        yield procs
    finally:
        ipydistribute.stop()
        ipydistribute.use(cluster)
        procs.close()
    assert not Path(sysconfig.get_paths()["purelib"], MODULE).exists()  # installed in the venv only


CELL = f"import {MODULE}\nopen(marker, 'w').close()\n{MODULE}.VALUE"


def test_a_worker_missing_a_module_gives_one_line_before_any_task_runs(
        ip: Any, kernel_has_module: None, remote: Procs, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    ip.user_ns["marker"] = str(marker)
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("distribute", "x in range(3) --view none", CELL)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{MODULE} is missing on 1 worker of 1 (127.0.0.1:")
    assert "the kernel has envcheck_probe_mod 1.2" in message
    assert "`%cluster install envcheck-probe-mod`" in message
    assert not marker.exists()
    client = ipydistribute.get_client()
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0

    wheel = make_wheel(tmp_path, "1.0")
    ip.run_line_magic("cluster", f"install {wheel}")
    with pytest.warns(RuntimeWarning, match=r"envcheck_probe_mod 1\.0 on 1 worker .* but 1\.2 in the kernel"):
        values = ip.run_cell_magic("distribute", "x in range(3) --view none", CELL)
    assert values == ["1.0"] * 3
    assert marker.exists()


def test_the_embedded_cluster_is_not_checked_and_install_says_where_to_install(ip: Any) -> None:
    from ipydistribute.core import envcheck

    assert ip.run_cell_magic("distribute", "x in range(2) --view none", "import numpy\nx") == [0, 1]
    assert not any(key for key in envcheck._checked if key[0] == ipydistribute.get_client().id)
    with pytest.raises(UsageError, match="share the kernel's environment: install in the kernel instead, "
                                         "with `%pip install scikit-learn`"):
        ip.run_line_magic("cluster", "install scikit-learn")


def test_modules_come_from_the_cells_imports_and_the_captured_references_not_from_data() -> None:
    import cloudpickle
    import numpy

    from ipydistribute.core import envcheck

    assert envcheck.modules_to_check(None, [cloudpickle.dumps({"numpy": "IPython", "text": "numpy"})]) == [
        "ipydistribute"]
    assert envcheck.modules_to_check(None, [cloudpickle.dumps(numpy.float64)]) == ["ipydistribute", "numpy"]
    assert envcheck.modules_to_check("import json\nfrom numpy import linalg", []) == ["ipydistribute", "numpy"]
