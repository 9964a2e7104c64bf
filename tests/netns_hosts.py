"""Separate hosts on one machine: Linux network namespaces joined by a bridge, made and deleted by the test.

Each host is a namespace with its own loopback and one address in a private test range that
exists only inside these namespaces (the bridge lives in a namespace of its own too), so no
packet of the test leaves them and nothing shares the kernel's loopback. Needs root and ``ip``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from deploy_servers import Server

#: A private range used only inside the namespaces made here (never routed anywhere).
SUBNET = "10.251.14"


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()} (the hosts test needs root)")


class Hosts:
    """Namespaces named after ``names``, each with address ``SUBNET.N``; ``close()`` deletes them all."""

    def __init__(self, names: list[str], log_dir: Path):
        if shutil.which("ip") is None:
            raise AssertionError("the hosts test needs the `ip` command (apt-get install iproute2)")
        self.log_dir = log_dir
        self.prefix = f"ipd{secrets.token_hex(3)}"
        self.switch = f"{self.prefix}-switch"
        self.namespaces: list[str] = []
        self.addresses: dict[str, str] = {}
        self.servers: list[Server] = []
        try:
            self._add(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for number, name in enumerate(names, start=1):
                ns, address = self.namespace(name), f"{SUBNET}.{number}"
                self._add(ns)
                _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"port{number}",
                    "netns", self.switch)
                _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
                _ip("-n", ns, "link", "set", "lo", "up")
                _ip("-n", self.switch, "link", "set", f"port{number}", "master", "br0")
                _ip("-n", self.switch, "link", "set", f"port{number}", "up")
                self.addresses[name] = address
        except BaseException:
            self.close()
            raise

    def _add(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)

    def namespace(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def command(self, name: str, args: list[str]) -> list[str]:
        """``args`` run on host ``name``."""
        return ["ip", "netns", "exec", self.namespace(name), *args]

    def start(self, name: str, label: str, args: list[str], env: dict[str, str] | None = None) -> Server:
        server = Server(label, self.command(name, args), self.log_dir, env=env)
        self.servers.append(server)
        return server

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        for ns in reversed(self.namespaces):
            with contextlib.suppress(AssertionError):
                _ip("netns", "del", ns)
        self.namespaces = []


def host_certificates(folder: Path, hosts: dict[str, str]) -> dict[str, Path]:
    """A CA, and for each host a certificate (``NAME.pem``) and key (``NAME.key``) naming its address."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
            "-days", "2", "-subj", "/CN=ipydistribute hosts test CA")
    paths = {"ca": ca}
    for name, address in hosts.items():
        key, csr, cert, ext = (folder / f"{name}.{suffix}" for suffix in ("key", "csr", "pem", "ext"))
        ext.write_text(f"subjectAltName=IP:{address}\n")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
                "-out", str(cert), "-days", "2", "-extfile", str(ext))
        paths[name], paths[f"{name}-key"] = cert, key
    return paths


def kernel_spec(folder: Path, hosts: Hosts, name: str) -> Path:
    """A kernelspec directory whose kernel runs on host ``name`` (reached over ipc, not TCP)."""
    spec = folder / "kernels" / "netns"
    spec.mkdir(parents=True, exist_ok=True)
    argv = hosts.command(name, [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"])
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": f"Python on {name}",
                                                  "language": "python"}))
    return folder / "kernels"
