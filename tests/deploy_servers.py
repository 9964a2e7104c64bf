"""Real servers for the deployment tests (dask-gateway, JupyterHub, Slurm, sshd), on loopback.

Each runs in its own process group with its log in the test's directory; a server that does not
come up fails the test with the reason and the end of its log (never a skip). The config files
they read live in ``tests/deploy/`` and are the ones docs/clusters.md shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from waiting import wait_until

DEPLOY = Path(__file__).parent / "deploy"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The status of a GET (following redirects), 0 when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


class Server:
    """One server process; ``stop()`` ends its whole process group."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or log_dir,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                         start_new_session=True)

    def log(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_ready(self, ready: Callable[[], Any], timeout: float = 90) -> None:
        def up() -> Any:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} before it was ready:\n"
                                     f"{self.log()}")
            return ready()

        wait_until(up, timeout, f"{self.name} did not become ready", self.log)

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def start_gateway(log_dir: Path, password: str = "test-password",
                  env: dict[str, str] | None = None) -> tuple[Server, str]:
    """A dask-gateway-server with ``tests/deploy/gateway/dask_gateway_config.py``; returns it and its URL."""
    port = free_port()
    (log_dir / "gateway").mkdir(exist_ok=True)
    server = Server("dask-gateway", [str(BIN / "dask-gateway-server"), "-f",
                                     str(DEPLOY / "gateway" / "dask_gateway_config.py")], log_dir,
                    env={"GATEWAY_PROXY_ADDRESS": f"127.0.0.1:{port}", "GATEWAY_PASSWORD": password,
                         "GATEWAY_STATE_DIR": str(log_dir / "gateway"), **(env or {})})
    url = f"http://127.0.0.1:{port}"
    server.wait_ready(lambda: http_status(f"{url}/api/health") == 200)
    return server, url


def started(make: Callable[[Path], Slurm | Sshd], directory: Path) -> Iterator[Any]:
    """A fixture's body (``yield from started(Sshd, tmp_path)``): the server made in
    ``directory``, stopped after the test whatever its outcome."""
    server = make(directory)
    try:
        yield server
    finally:
        server.stop()


class Slurm:
    """munged, slurmctld and slurmd of ``tests/deploy/slurm/slurm.conf`` in ``directory``, as root.

    ``env`` is what a shell or kernel needs to reach it (``SLURM_CONF``).
    """

    def __init__(self, directory: Path):
        self.dir = directory
        for sub in ("state", "spool", "logs"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        key = directory / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        socket_path = directory / "munge.sock"
        values = {"HOST": socket.gethostname().split(".")[0], "DIR": str(directory),
                  "PORT_CTLD": str(free_port()), "PORT_D": str(free_port()),
                  "CPUS": str(os.cpu_count() or 1), "SOCKET": str(socket_path)}
        conf = string.Template((DEPLOY / "slurm" / "slurm.conf").read_text()).substitute(values)
        (directory / "slurm.conf").write_text(conf)
        self.env = {"SLURM_CONF": str(directory / "slurm.conf")}
        self.servers: list[Server] = []
        found = {name: _which(name) for name in ("munged", "slurmctld", "slurmd", "sbatch")}
        missing = [name for name, path in found.items() if not path]
        if missing:
            raise AssertionError(f"Slurm cannot start: {', '.join(missing)} not found "
                                 "(apt-get install slurm-wlm munge; `make system-deps` does it)")
        munge = Server("munged", [found["munged"], "-F", "--force", f"--socket={socket_path}", f"--key-file={key}",
                                  f"--pid-file={directory}/munged.pid", f"--seed-file={directory}/munged.seed",
                                  f"--log-file={directory}/munged.log"], directory)
        self.servers.append(munge)
        munge.wait_ready(socket_path.exists, 30)
        conf_arg = ["-f", str(directory / "slurm.conf")]
        self.servers.append(Server("slurmctld", [found["slurmctld"], "-D", *conf_arg], directory, env=self.env))
        self.servers.append(Server("slurmd", [found["slurmd"], "-D", "-N", "localnode", *conf_arg], directory,
                                   env=self.env))
        self.servers[-1].wait_ready(lambda: self.command("sinfo", "-h", "-o", "%T").strip() == "idle", 60)

    def command(self, *args: str) -> str:
        done = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **self.env}, timeout=30)
        return done.stdout

    def jobs(self) -> list[str]:
        """The ids of the jobs in ``squeue`` (pending or running)."""
        return self.command("squeue", "-h", "-o", "%i").split()

    def stop(self) -> None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.command("scancel", "--user", "root")
        for server in reversed(self.servers):
            server.stop()


class Sshd:
    """An sshd of ``tests/deploy/ssh/sshd_config`` on 127.0.0.1 with a client key made here."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.port = free_port()
        self.key = directory / "client_ed25519"
        sshd = Path("/usr/sbin/sshd")
        if not sshd.exists() or not shutil.which("ssh-keygen"):
            raise AssertionError("sshd cannot start: /usr/sbin/sshd or ssh-keygen not found "
                                 "(apt-get install openssh-server; `make system-deps` does it)")
        for path in (directory / "host_ed25519_key", self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        (directory / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        conf = string.Template((DEPLOY / "ssh" / "sshd_config").read_text()).substitute(
            DIR=str(directory), PORT=str(self.port))
        (directory / "sshd_config").write_text(conf)
        Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory
        self.server = Server("sshd", [str(sshd), "-D", "-e", "-f", str(directory / "sshd_config")], directory)
        self.server.wait_ready(lambda: _accepts(self.port), 30)

    def stop(self) -> None:
        self.server.stop()


def _which(name: str) -> str:
    """A command's path, looking in the sbin directories too (daemons live there)."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") or ""


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_hub(log_dir: Path, password: str, users: tuple[str, ...] = ("alice", "bob"),
              env: dict[str, str] | None = None) -> tuple[Server, str, int]:
    """JupyterHub of ``tests/deploy/hub/jupyterhub_config.py`` with its dask-gateway service.

    Returns the hub, its URL and the gateway's proxy port.
    """
    if not shutil.which("configurable-http-proxy"):
        raise AssertionError("JupyterHub cannot start: configurable-http-proxy not found "
                             "(npm install -g configurable-http-proxy; `make system-deps` does it)")
    ports = {name: free_port() for name in ("HUB_PORT", "HUB_API_PORT", "HUB_PROXY_API_PORT", "HUB_GATEWAY_PORT")}
    hub_env = {**{k: str(v) for k, v in ports.items()}, "HUB_STATE_DIR": str(log_dir),
               "HUB_PASSWORD": password, "HUB_USERS": ",".join(users),
               "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    server = Server("jupyterhub", [str(BIN / "jupyterhub"), "-f", str(DEPLOY / "hub" / "jupyterhub_config.py")],
                    log_dir, env=hub_env)
    url = f"http://127.0.0.1:{ports['HUB_PORT']}"
    server.wait_ready(lambda: http_status(f"{url}/hub/api/") == 200
                      and http_status(f"{url}/services/dask-gateway/api/health") == 200)
    return server, url, ports["HUB_GATEWAY_PORT"]
