# dask-gateway as a JupyterHub service: the one-machine configuration of ../gateway/, with the
# hub's logins and the hub's URL prefix. The hub starts it (see jupyterhub_config.py) and sets
# JUPYTERHUB_API_TOKEN, JUPYTERHUB_API_URL, JUPYTERHUB_SERVICE_NAME and JUPYTERHUB_SERVICE_PREFIX.
import os

c = get_config()  # noqa: F821
load_subconfig(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway",  # noqa: F821
                            "dask_gateway_config.py"))

# Users log in with their JupyterHub token; only tokens with access to this service are taken.
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
# The hub's proxy forwards /services/dask-gateway/... unchanged: serve under that prefix.
c.Proxy.prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/dask-gateway/").rstrip("/")
