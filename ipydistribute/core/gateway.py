"""Clusters from a dask-gateway server: create, list, reconnect to, scale and shut down.

A gateway (often a JupyterHub service) starts each user's scheduler and workers, enforces the
deployment's limits and proxies both the scheduler's TLS connection and the dashboard. The login
comes from dask-gateway's own configuration (``gateway.auth``: a JupyterHub token inside a hub,
basic, Kerberos), never from the magic line. The notebook that creates a cluster, or reconnects
to one, shuts it down when it stops or its kernel exits, unless it was asked to ``keep`` it.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from typing import Any

import dask

from . import cluster as cluster_mod
from .errors import SpecError, shorten

__all__ = ["GatewayClusterInfo", "gateway_address", "list_clusters", "start"]

INSTALL = "install it with `pip install dask-gateway`"


@dataclass(frozen=True)
class GatewayClusterInfo:
    """One of the user's clusters as the gateway reports it."""

    name: str
    status: str
    dashboard_link: str | None
    options: dict[str, Any]


def gateway_address(address: str | None = None) -> str:
    """``address``, or ``gateway.address`` from dask-gateway's configuration (``DASK_GATEWAY__ADDRESS``)."""
    _import_client()  # its import loads dask-gateway's configuration defaults
    found = address or dask.config.get("gateway.address", default=None)
    if not found:
        raise SpecError("no gateway address: give it (`%cluster gateway http://host:8000`) or set "
                        "gateway.address in Dask's configuration (DASK_GATEWAY__ADDRESS)")
    text = str(found).format_map(_Environ())
    if "://" not in text:
        raise SpecError(f"{text!r} is not a gateway address: write it like http://host:8000")
    return text


def start(address: str | None = None, *, workers: int | None = None, adapt: tuple[int, int] | None = None,
          options: dict[str, Any] | None = None, connect: str | None = None,
          keep: bool = False) -> cluster_mod.ClusterHandle:
    """Create a gateway cluster (or reconnect to ``connect``), scale it, and make it current.

    Parameters
    ----------
    address
        The gateway's URL; default ``gateway.address`` from Dask's configuration.
    workers, adapt
        Workers to ask for, or ``(minimum, maximum)`` for adaptive scaling by the gateway.
    options
        The gateway's cluster options by name (``Gateway.cluster_options()`` lists them).
    connect
        The name of a running cluster of this user to use instead of creating one.
    keep
        Leave the cluster running when the notebook stops or its kernel exits (reconnect later
        with ``connect``; the gateway's idle timeout still applies).
    """
    if workers is not None and workers < 0:
        raise SpecError(f"--workers must be 0 or more, not {workers}")
    if adapt is not None and (adapt[0] < 0 or adapt[1] < max(adapt[0], 1)):
        raise SpecError(f"--adapt takes MIN MAX with 0 <= MIN <= MAX and MAX >= 1, not {adapt[0]} {adapt[1]}")
    if workers is not None and adapt is not None:
        raise SpecError("give --workers or --adapt, not both")
    if connect and options:
        raise SpecError("--option applies to a new cluster: a running one keeps the options it started with")
    url = gateway_address(address)
    client_mod = _import_client()
    gateway = _gateway(client_mod, url)
    try:
        if connect:
            _check_exists(gateway, url, connect)
            manager = _call(url, lambda: client_mod.GatewayCluster.from_name(
                connect, address=url, shutdown_on_close=not keep))
        else:
            chosen = _options(gateway, url, options or {})
            manager = _call(url, lambda: gateway.new_cluster(chosen, shutdown_on_close=not keep))
    finally:
        _close(gateway)
    try:
        if workers is not None:
            _scale(manager, workers)
        elif adapt is not None:
            _adapt(manager, *adapt)
        client = manager.get_client(set_as_default=True)
    except BaseException as exc:
        # A cluster made here is shut down (nothing is left half made); one reconnected to is only let go.
        close(manager, shutdown=not connect)
        if isinstance(exc, SpecError) and not connect:
            # the gateway's "Scaling to 2 instead." did not happen: the cluster is gone
            text = re.sub(r"\s*(Scaling to \d+|Using .*?) instead\.$", "", str(exc)).rstrip(".")
            raise SpecError(f"{text}; the new cluster was shut down: ask for fewer") from None
        raise
    handle = cluster_mod.ClusterHandle(client, manager, "gateway", adaptive=adapt, requested=workers or 0,
                                       control=GatewayControl(manager))
    with cluster_mod._lock:
        cluster_mod.stop()
        return cluster_mod._set_current(handle)


def list_clusters(address: str | None = None) -> list[GatewayClusterInfo]:
    """The user's pending and running clusters on the gateway."""
    url = gateway_address(address)
    gateway = _gateway(_import_client(), url)
    try:
        reports = _call(url, gateway.list_clusters)
    finally:
        _close(gateway)
    return [GatewayClusterInfo(r.name, r.status.name.lower(), r.dashboard_link, dict(r.options or {}))
            for r in reports]


def close(manager: Any, shutdown: bool | None = None) -> None:
    """Drop the notebook's connection to a gateway cluster, shutting it down unless it was kept
    (``shutdown`` overrides that)."""
    manager.close(shutdown=shutdown)  # closes its Gateway too
    _forget_loop(manager.gateway)


def _close(gateway: Any) -> None:
    gateway.close()
    _forget_loop(gateway)


def _forget_loop(gateway: Any) -> None:
    # dask-gateway 2026.3: Gateway.__del__ closes again and raises ("Accessing the loop property
    # while the loop is not running") once the loop has stopped; it skips a gateway without a runner.
    with contextlib.suppress(AttributeError):
        del gateway._loop_runner


class GatewayControl:
    """How :mod:`.cluster` scales and closes a gateway cluster (its limits become SpecErrors)."""

    def __init__(self, manager: Any):
        self.manager = manager

    def scale(self, n: int) -> None:
        scale(self.manager, n)

    def adapt(self, minimum: int, maximum: int) -> None:
        adapt(self.manager, minimum, maximum)

    def close(self) -> None:
        close(self.manager)


def scale(manager: Any, n: int) -> None:
    """Ask the gateway for ``n`` workers; over the deployment's limits is a SpecError."""
    _scale(manager, n)


def adapt(manager: Any, minimum: int, maximum: int) -> None:
    """Let the gateway scale between ``minimum`` and ``maximum`` workers."""
    _adapt(manager, minimum, maximum)


def _scale(manager: Any, n: int) -> None:
    _refused_if_warned(lambda: manager.scale(n), f"{n} workers")


def _adapt(manager: Any, minimum: int, maximum: int) -> None:
    _refused_if_warned(lambda: manager.adapt(minimum=minimum, maximum=maximum),
                       f"adaptive scaling up to {maximum} workers")


def _refused_if_warned(action: Any, what: str) -> None:
    """The gateway caps a request over its limits and says so in a warning: make it an error."""
    client_mod = _import_client()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", client_mod.GatewayWarning)
        action()
    for warning in caught:
        if issubclass(warning.category, client_mod.GatewayWarning):
            raise SpecError(f"the gateway refused {what}: {shorten(str(warning.message), 200)}")


def _options(gateway: Any, url: str, given: dict[str, Any]) -> Any:
    chosen = _call(url, gateway.cluster_options)
    known = list(chosen)
    for key, value in given.items():
        if key not in known:
            offered = ", ".join(known) or "none"
            raise SpecError(f"the gateway at {url} has no cluster option {key!r} (it offers: {offered})")
        try:
            chosen[key] = value
        except (TypeError, ValueError) as exc:
            raise SpecError(f"--option {key}={value!r}: {shorten(str(exc), 160)}") from None
    return chosen


def option_value(text: str) -> Any:
    """``2`` -> 2, ``1.5`` -> 1.5, ``True`` -> True, ``'a b'`` -> "a b"; anything else stays text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _check_exists(gateway: Any, url: str, name: str) -> None:
    names = [report.name for report in _call(url, gateway.list_clusters)]
    if name not in names:
        mine = ", ".join(names) or "none running"
        raise SpecError(f"the gateway at {url} has no running cluster {name!r} of yours (yours: {mine}); "
                        "`%cluster gateway --list` lists them")


def _gateway(client_mod: Any, url: str) -> Any:
    try:
        return client_mod.Gateway(address=url)
    except (ValueError, TypeError, ImportError) as exc:  # the auth configuration (a missing token...)
        raise SpecError(f"cannot log in to the gateway at {url}: {shorten(str(exc), 200)} "
                        "(set gateway.auth in Dask's configuration)") from None


def _call(url: str, action: Any) -> Any:
    """Run a request to the gateway; its refusals and failures become one-line SpecErrors."""
    client_mod = _import_client()
    try:
        return action()
    except client_mod.GatewayClusterError as exc:
        raise SpecError(f"the gateway's cluster failed to start: {shorten(str(exc), 200)}") from None
    except ValueError as exc:  # 404 and 422: the gateway's own words (a limit, an unknown cluster)
        raise SpecError(f"the gateway at {url} refused: {shorten(str(exc), 200)}") from None
    except client_mod.GatewayServerError as exc:
        raise SpecError(f"the gateway at {url} failed: {shorten(str(exc), 200)}") from None
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise SpecError(f"the gateway at {url} refused this login ({status}): check gateway.auth in "
                            "Dask's configuration (inside JupyterHub: type jupyterhub)") from None
        if isinstance(exc, OSError) or type(exc).__module__.startswith("aiohttp"):
            raise SpecError(f"cannot reach the gateway at {url} ({type(exc).__name__}: "
                            f"{shorten(str(exc), 160)}); is it running, and is the address right?") from None
        raise


def _import_client() -> Any:
    try:
        import dask_gateway
    except ImportError:
        raise SpecError(f"%cluster gateway needs the dask-gateway client: {INSTALL}") from None
    return dask_gateway


class _Environ(dict[str, str]):
    """Template values for addresses like ``http://{JUPYTERHUB_HOST}/services/dask-gateway``."""

    def __missing__(self, key: str) -> str:
        return os.environ.get(key, "{" + key + "}")
