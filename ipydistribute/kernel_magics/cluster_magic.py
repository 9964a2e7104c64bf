"""``%cluster``: start, connect to, show, scale, restart and stop the notebook's Dask cluster.

Each subcommand has its own ``magic_arguments`` parser; ``%cluster?`` shows all of them.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..core import cluster
from ..core.errors import SpecError, safe_repr, shorten
from .distribute import usage_errors
from .say import say


@magic_arguments(name="cluster start")
@argument("--workers", type=int, default=None, help="CPU workers (default: the cores left after GPU workers)")
@argument("--threads", type=int, default=1, help="threads per worker (default 1)")
@argument("--memory-limit", dest="memory_limit", default="auto", metavar="SIZE",
          help="memory per worker, like 4GiB (default: the machine's memory shared out)")
@argument("--gpus", default="auto", metavar="auto|N|none",
          help="one worker per GPU found through NVML, each with resource GPU=1 (default auto)")
@argument("--simulate-gpus", type=int, default=0, dest="simulate_gpus", metavar="N",
          help="N workers that declare GPU=1 without a GPU, to practise --gpu cells (shown as simulated)")
def _start(line: str) -> cluster.ClusterHandle:
    """Start the embedded cluster: worker processes on this machine, every port on 127.0.0.1."""
    args = _parse(_start, line)
    return cluster.start_local(workers=args.workers, threads=args.threads, memory_limit=args.memory_limit,
                               gpus=args.gpus, simulate_gpus=args.simulate_gpus, announce=say)


@magic_arguments(name="cluster connect")
@argument("address", help="the scheduler: tcp://host:8786, or tls://host:8786")
@argument("--tls-ca-file", dest="tls_ca_file", metavar="PATH", help="CA certificate (PEM) for tls://")
@argument("--tls-cert", dest="tls_cert", metavar="PATH", help="this client's certificate (PEM) for tls://")
@argument("--tls-key", dest="tls_key", metavar="PATH",
          help="this client's private key (PEM); a path, never the key itself")
@argument("--timeout", type=float, default=None, metavar="SECONDS",
          help="give up after this long (default: ipydistribute.connect-timeout, 10 s)")
def _connect(line: str) -> cluster.ClusterHandle:
    """Connect to a running scheduler. Without --tls-* paths, tls:// uses Dask's TLS configuration."""
    args = _parse(_connect, line)
    return cluster.connect(args.address, timeout=args.timeout, tls_ca_file=args.tls_ca_file,
                           tls_cert=args.tls_cert, tls_key=args.tls_key)


@magic_arguments(name="cluster new")
@argument("path", metavar="module.ClusterClass", help="a Dask cluster manager, e.g. dask_jobqueue.SLURMCluster")
@argument("options", nargs="*", metavar="key=value",
          help="keyword arguments of the class; values are Python literals: cores=4 memory='16GB'")
def _new(line: str) -> cluster.ClusterHandle:
    """Start any Dask cluster manager by import path (this notebook owns it: stop closes it)."""
    args = _parse(_new, line)
    return cluster.new(args.path, **literal_options(line.strip().partition(" ")[2]))


@magic_arguments(name="cluster gateway")
@argument("url", nargs="?", default=None,
          help="the gateway, like http://host:8000 (default: gateway.address of dask-gateway's configuration)")
@argument("--workers", type=int, default=None, metavar="N", help="workers to ask the gateway for")
@argument("--adapt", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
          help="let the gateway scale between MIN and MAX workers")
@argument("--option", action="append", default=[], metavar="KEY=VALUE",
          help="one of the gateway's cluster options (repeat for more); values are Python literals or text")
@argument("--list", action="store_true", help="list your clusters on the gateway and do nothing else")
@argument("--connect", default=None, metavar="NAME", help="use your running cluster NAME instead of a new one")
@argument("--keep", action="store_true",
          help="leave the cluster running when the notebook stops or its kernel exits (reconnect with --connect)")
def _gateway(line: str) -> cluster.ClusterHandle | str:
    """Create a cluster on a dask-gateway server (login from dask-gateway's configuration)."""
    from ..core import gateway

    args = _parse(_gateway, line)
    if args.list:
        found = gateway.list_clusters(args.url)
        rows = [f"{c.name}  {c.status}  {c.dashboard_link or ''}" for c in found]
        return "\n".join(rows) if rows else f"no cluster of yours on {gateway.gateway_address(args.url)}"
    options = {}
    for item in args.option:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise SpecError(f"--option takes KEY=VALUE, not {safe_repr(item, 60)}")
        options[key.strip()] = gateway.option_value(value)
    return gateway.start(args.url, workers=args.workers, adapt=tuple(args.adapt) if args.adapt else None,
                         options=options, connect=args.connect, keep=args.keep)


@magic_arguments(name="cluster scale")
@argument("n", type=int, metavar="N", help="the number of workers to have (GPU workers of the embedded cluster stay)")
def _scale(line: str) -> str:
    """Ask for N workers; stops adaptive scaling."""
    cluster.scale(_parse(_scale, line).n)
    return "scaling requested"


@magic_arguments(name="cluster adapt")
@argument("minimum", type=int, metavar="MIN", help="fewest workers")
@argument("maximum", type=int, metavar="MAX", help="most workers")
def _adapt(line: str) -> str:
    """Let Dask add and remove workers between MIN and MAX as the load asks."""
    args = _parse(_adapt, line)
    cluster.adapt(args.minimum, args.maximum)
    return f"adaptive scaling between {args.minimum} and {args.maximum} workers"


@magic_arguments(name="cluster restart")
def _restart(line: str) -> str:
    """Restart every worker: their memory and what %%distribute --all stored there are gone."""
    _parse(_restart, line)
    cluster.restart()
    return "workers restarted"


@magic_arguments(name="cluster stop")
def _stop(line: str) -> str:
    """Close the cluster this notebook started (no worker is left), or disconnect from a remote one."""
    _parse(_stop, line)
    handle, _ = cluster.current(start=False)
    cluster.stop()
    if handle is None:
        return "no cluster to stop"
    return "stopped" if handle.owned else "disconnected (the cluster keeps running)"


@magic_arguments(name="cluster install")
@argument("packages", nargs="+", metavar="PACKAGE", help="what pip installs: names, name==version, or wheel paths")
@argument("--restart", action="store_true", help="restart the workers afterwards (for packages already imported)")
def _install(line: str) -> str:
    """pip install packages on every worker, and on workers that join later (Dask's PipInstall plugin)."""
    from ..core import envcheck

    args = _parse(_install, line)
    handle, _ = cluster.current(start=False)
    if handle is None:
        raise SpecError("there is no cluster to install on: `%cluster connect ADDRESS` first")
    if handle.kind == "local":
        raise SpecError("the embedded cluster's workers share the kernel's environment: "
                        f"install in the kernel instead, with `%pip install {' '.join(args.packages)}`")
    envcheck.install(handle.client, args.packages, restart=args.restart)
    return f"installed {', '.join(args.packages)} on the workers"


@magic_arguments(name="cluster status")
def _status(line: str) -> None:
    """Show the cluster: workers, totals, dashboard link and controls (also `%cluster` alone)."""
    _parse(_status, line)


SUBCOMMANDS: dict[str, Callable[[str], Any]] = {
    "start": _start, "connect": _connect, "new": _new, "gateway": _gateway, "scale": _scale, "adapt": _adapt,
    "status": _status, "restart": _restart, "stop": _stop, "install": _install,
}


def _parse(func: Any, line: str) -> Any:
    try:
        return parse_argstring(func, line)
    except UsageError as exc:
        name = func.argcmd_name
        raise UsageError(f"%{name}: {exc} (see %cluster?)") from None


def literal_options(text: str) -> dict[str, Any]:
    """``cores=4 memory='16 GB'`` -> ``{"cores": 4, "memory": "16 GB"}``; values are Python literals."""
    options: dict[str, Any] = {}
    for token in _split_words(text):
        key, eq, value = token.partition("=")
        if not eq or not key.isidentifier():
            raise SpecError(f"%cluster new takes options as key=value, not {safe_repr(token, 60)}")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise SpecError(f"%cluster new: {key}={shorten(value, 60)} is not a Python literal: "
                            f"quote strings, like {key}='{shorten(value, 40)}'") from None
    return options


def _split_words(text: str) -> list[str]:
    """Split at spaces outside quotes and brackets, keeping the quotes (unlike shlex)."""
    words: list[str] = []
    current: list[str] = []
    quote, depth = "", 0
    for char in text:
        if quote:
            quote = "" if char == quote and (not current or current[-1] != "\\") else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char.isspace() and depth == 0:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
    if current:
        words.append("".join(current))
    return words


def _with_subcommand_help(method: Any) -> Any:
    parts = [method.__doc__ or ""] + [f"{func.__doc__}" for func in SUBCOMMANDS.values()]
    method.__doc__ = "\n".join(parts)
    return method


@magics_class
class ClusterMagics(Magics):
    @line_magic
    @usage_errors
    @_with_subcommand_help
    def cluster(self, line: str) -> Any:
        """Start, connect to, show, scale, restart and stop the notebook's Dask cluster.

        Examples::

            %cluster start --workers 2 --simulate-gpus 1
            %cluster connect tls://sched.example.org:8786 --tls-ca-file ca.pem --tls-cert me.pem --tls-key me.key
            %cluster new dask_jobqueue.SLURMCluster cores=8 memory='16GB' queue='regular'
            %cluster gateway --workers 4          # the address and login from dask-gateway's config
            %cluster gateway --list
            %cluster scale 4
            %cluster adapt 1 10
            %cluster install scikit-learn==1.5.2   # on the workers of a remote cluster
            %cluster            # the cluster widget: workers, totals, dashboard, controls
            %cluster stop

        Subcommands:
        """
        command, _, rest = line.strip().partition(" ")
        command = command or "status"
        sub = SUBCOMMANDS.get(command)
        if sub is None:
            raise UsageError(f"%cluster has no subcommand {command!r}: use {', '.join(SUBCOMMANDS)} (see %cluster?)")
        result = sub(rest)
        if isinstance(result, str):
            print(result)
            return None
        self._show()
        return None

    def _show(self) -> None:
        from ..core.cluster_snapshot import take
        from ..widgets.cluster_widget import show, table_text
        from ..widgets.factory import in_kernel

        handle, _ = cluster.current(start=False)
        if handle is None:
            print("no cluster yet: `%cluster start`, `%cluster connect ADDRESS`, or run a %%distribute cell")
        elif in_kernel(self.shell):
            show(handle)
        else:
            print(table_text(take(handle)))
