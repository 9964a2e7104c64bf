"""``%cluster``: start, connect, scale and stop the notebook's Dask cluster."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..core import cluster
from .distribute import usage_errors


@magics_class
class ClusterMagics(Magics):
    @magic_arguments()
    @argument("command", nargs="?", default="status", help="start, connect, stop or status")
    @argument("address", nargs="?", help="scheduler address for connect")
    @argument("--workers", type=int, default=None, help="CPU workers for start")
    @argument("--threads", type=int, default=1, help="threads per worker for start")
    @argument("--simulate-gpus", type=int, default=0, dest="simulate_gpus",
              help="workers that declare a GPU resource without a GPU, for practice")
    @argument("--gpus", default="auto", help="auto, none or a number")
    @line_magic
    @usage_errors
    def cluster(self, line: str) -> Any:
        """Start, connect to, show and stop the notebook's Dask cluster."""
        args = parse_argstring(self.cluster, line)
        if args.command == "start":
            handle = cluster.start_local(workers=args.workers, threads=args.threads, gpus=args.gpus,
                                         simulate_gpus=args.simulate_gpus)
            return handle.client
        if args.command == "connect":
            return cluster.connect(args.address).client
        if args.command == "stop":
            cluster.stop()
            return None
        handle, _ = cluster.current(start=False)
        return handle.client if handle else "no cluster: %cluster start"
