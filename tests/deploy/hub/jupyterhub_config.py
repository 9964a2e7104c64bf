# JupyterHub for a class, with dask-gateway as a hub service: every user gets their own Dask
# clusters (within the gateway's limits), logs in once (the hub's login), and reaches dashboards
# through the hub. The tests start it with `jupyterhub -f THIS_FILE`; ports and the state
# directory come from the environment. Lines marked TEST differ in a real deployment.
import os
import sys

c = get_config()  # noqa: F821 (traitlets config files get this name)

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
STATE = os.environ.get("HUB_STATE_DIR", "/srv/jupyterhub")
HUB_PORT = int(os.environ.get("HUB_PORT", "8000"))  # what the students' browsers open
GATEWAY_PORT = int(os.environ.get("HUB_GATEWAY_PORT", "8010"))  # dask-gateway's proxy (HTTP and TLS)

c.JupyterHub.bind_url = f"http://127.0.0.1:{HUB_PORT}"  # a real hub: https on its public name
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ.get('HUB_API_PORT', '8081')}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.pid_file = f"{STATE}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{STATE}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{STATE}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True

# TEST: any listed user logs in with one shared password. A class uses the university's login
# (oauthenticator, ldapauthenticator) or NativeAuthenticator.
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ.get("HUB_PASSWORD", "class-password")
c.Authenticator.allowed_users = set(os.environ.get("HUB_USERS", "alice,bob").split(","))

# TEST: every server is a process of the hub's user with its own home directory. A real hub
# uses LocalProcessSpawner (one Unix account per student), SystemdSpawner or DockerSpawner.
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = f"{STATE}/home/{{username}}"
c.Spawner.cmd = [os.path.join(BIN, "jupyterhub-singleuser")]
c.Spawner.args = ["--allow-root"] if os.getuid() == 0 else []
c.Spawner.default_url = "/lab"

# The notebooks find the gateway through dask-gateway's own configuration: its API and the
# dashboards through the hub's proxy, the schedulers' TLS straight to the gateway's proxy (the
# hub's HTTP proxy cannot carry it), the login with the server's JupyterHub token.
c.Spawner.environment = {
    "DASK_GATEWAY__ADDRESS": f"http://127.0.0.1:{HUB_PORT}/services/dask-gateway",
    "DASK_GATEWAY__PUBLIC_ADDRESS": "/services/dask-gateway",
    "DASK_GATEWAY__PROXY_ADDRESS": f"gateway://127.0.0.1:{GATEWAY_PORT}",
    "DASK_GATEWAY__AUTH__TYPE": "jupyterhub",
}
# The server's token may use the gateway (besides what a server's token always holds).
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 "access:services!service=dask-gateway"]

# dask-gateway, started and stopped by the hub; the hub gives it its token, API URL and prefix.
c.JupyterHub.services = [
    {
        "name": "dask-gateway",
        "url": f"http://127.0.0.1:{GATEWAY_PORT}",
        "command": [os.path.join(BIN, "dask-gateway-server"), "-f", os.path.join(HERE, "dask_gateway_config.py")],
        "environment": {"GATEWAY_PROXY_ADDRESS": f"127.0.0.1:{GATEWAY_PORT}",
                        "GATEWAY_STATE_DIR": f"{STATE}/gateway",
                        "GATEWAY_MAX_CLUSTERS_PER_USER": os.environ.get("GATEWAY_MAX_CLUSTERS_PER_USER", "1"),
                        "PATH": os.environ.get("PATH", ""),
                        "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    },
]
c.JupyterHub.load_roles = [
    # every user may use the gateway (its JupyterHub authenticator checks this scope)
    {"name": "user", "scopes": ["self", "access:services!service=dask-gateway"]},
]
