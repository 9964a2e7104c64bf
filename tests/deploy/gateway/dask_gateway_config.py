# dask-gateway-server configuration for one machine: clusters as local processes, the bundled
# proxy, and per-user limits. The tests start it with `dask-gateway-server -f THIS_FILE`; the
# ports and the state directory come from the environment so that several can run at once.
# Where a line differs for a real deployment, its comment says so.
import os
import sys

from dask_gateway_server.backends.base import PublicException
from dask_gateway_server.backends.local import UnsafeLocalBackend
from dask_gateway_server.options import Float, Integer, Options

c = get_config()  # noqa: F821 (traitlets config files get this name)

# The private API, and the proxy: one port for HTTP (the API and the dashboards) and the
# schedulers' TLS, so a client needs only `gateway.address`.
c.DaskGateway.address = os.environ.get("GATEWAY_API_ADDRESS", "127.0.0.1:0")
c.Proxy.address = os.environ.get("GATEWAY_PROXY_ADDRESS", "127.0.0.1:8000")

# Clusters as processes of the gateway's own user (the class below extends it). A real multi-user machine uses
# dask_gateway_server.backends.local.LocalBackend (runs each user's processes as that user,
# the gateway runs as root) or a jobqueue/Kubernetes backend.
MAX_CLUSTERS_PER_USER = int(os.environ.get("GATEWAY_MAX_CLUSTERS_PER_USER", "1"))


class LimitedLocalBackend(UnsafeLocalBackend):
    """dask-gateway limits each cluster, not how many one user runs: this refuses the extra one."""

    async def start_cluster(self, user, cluster_options):
        running = await self.list_clusters(username=user.name)
        if len(running) >= MAX_CLUSTERS_PER_USER:
            raise PublicException(f"{user.name} already runs {len(running)} cluster(s), the most allowed "
                                  f"here is {MAX_CLUSTERS_PER_USER}: stop one first")
        return await super().start_cluster(user, cluster_options)


c.DaskGateway.backend_class = LimitedLocalBackend
c.LocalBackend.clusters_directory = os.environ.get("GATEWAY_STATE_DIR", "/tmp/dask-gateway") + "/clusters"
# The cluster records live in memory (the default): a restarted gateway forgets its clusters. A
# real deployment keeps them in a file, which needs a key:
#   c.DBBackendBase.db_url = "sqlite:////var/lib/dask-gateway/gateway.sqlite"
#   c.DBBackendBase.db_encrypt_keys = ["<output of: openssl rand -base64 32>"]

# Test logins: any user name, one shared password. Behind JupyterHub this is
# dask_gateway_server.auth.JupyterHubAuthenticator (see ../hub/jupyterhub_config.py).
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = os.environ.get("GATEWAY_PASSWORD", "")

# Dask's command line from the gateway's own environment (distributed has no `dask-scheduler`
# script any more: it is `dask scheduler`).
DASK = os.path.join(os.path.dirname(sys.executable), "dask")
c.ClusterConfig.scheduler_cmd = [DASK, "scheduler"]
c.ClusterConfig.worker_cmd = [DASK, "worker"]

# Per-cluster limits, the scheduler included: 1 core for it and 1 per worker, so at most 2 workers.
c.ClusterConfig.scheduler_cores = 1
c.ClusterConfig.scheduler_memory = "512 M"
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.cluster_max_cores = 3
c.ClusterConfig.cluster_max_memory = "2 G"
c.ClusterConfig.cluster_max_workers = 2


# What a user may choose (`%cluster gateway --option worker_memory=1`), within bounds.
def worker_options(options):
    return {"worker_cores": options.worker_cores, "worker_memory": int(options.worker_memory * 2**30)}


c.Backend.cluster_options = Options(
    Integer("worker_cores", default=1, min=1, max=1, label="Worker cores"),
    Float("worker_memory", default=0.5, min=0.25, max=1, label="Worker memory (GiB)"),
    handler=worker_options,
)
# A cluster nobody uses for 10 minutes is shut down (a killed kernel never leaves one for long).
c.ClusterConfig.idle_timeout = 600
