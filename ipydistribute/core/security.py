"""TLS for connecting to a secured scheduler: certificate *paths* in, a Dask ``Security`` out.

Secrets never travel on a magic line: the line names files (or nothing, and Dask's own
configuration ``distributed.comm.tls.*`` supplies them).
"""

from __future__ import annotations

import os
from typing import Any

from distributed.security import Security

from .errors import SpecError

_OPTIONS = {"tls_ca_file": "--tls-ca-file", "tls_client_cert": "--tls-cert", "tls_client_key": "--tls-key"}


def tls_security(ca_file: str | None = None, cert: str | None = None, key: str | None = None) -> Security:
    """A client ``Security`` for ``tls://`` addresses.

    Parameters
    ----------
    ca_file
        The certificate authority that signed the scheduler's certificate (PEM).
    cert, key
        This client's certificate and private key (PEM). Dask schedulers ask every client for a
        certificate signed by their CA (mutual TLS), so a client without one is refused.
        ``key`` may be left out when ``cert`` holds both.

    Paths not given come from Dask's configuration (``distributed.comm.tls.ca-file``,
    ``distributed.comm.tls.client.cert``, ``distributed.comm.tls.client.key``).
    """
    given = {"tls_ca_file": ca_file, "tls_client_cert": cert, "tls_client_key": key}
    for option, path in given.items():
        if path is not None and ("-----BEGIN" in path or "\n" in path):  # never echo a pasted secret
            raise SpecError(f"{_OPTIONS[option]} takes the path of a PEM file, not its contents")
        if path is not None and not os.path.isfile(os.path.expanduser(path)):
            raise SpecError(f"{_OPTIONS[option]} {path}: no such file; give the path of a PEM file")
    if key is not None and cert is None:
        raise SpecError("--tls-key needs --tls-cert: give the client certificate that goes with the key")
    options: dict[str, Any] = {k: os.path.expanduser(v) for k, v in given.items() if v is not None}
    return Security(require_encryption=True, **options)


def needs_tls(address: str) -> bool:
    return address.startswith("tls://")


def describe(security: Security | None) -> str:
    """What a TLS connection attempt used, for an error message (paths only, never contents)."""
    if security is None:
        return "no TLS settings"
    parts = []
    for option, flag in _OPTIONS.items():
        value = getattr(security, option, None)
        if not value:
            parts.append(f"no {flag}")
        else:  # Dask also accepts PEM text in place of a path: never echo that
            parts.append(f"{flag} (inline PEM)" if "-----BEGIN" in str(value) else f"{flag} {value}")
    return ", ".join(parts)
