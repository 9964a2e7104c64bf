"""A JupyterHub user as a test drives one: a login, a server, and kernels run over the hub's proxy.

Kernels are reached the way JupyterLab reaches them: the server's REST API and the kernel's
websocket, both through the hub's proxy with the user's token.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from typing import Any

import requests
import websocket
from kernel_helpers import Reply
from waiting import wait_until


class HubUser:
    """``name`` logged in to the hub at ``url`` through its login form; their token, server and kernels."""

    def __init__(self, url: str, name: str, password: str):
        self.url, self.name = url, name
        session = requests.Session()
        session.get(f"{url}/hub/login", timeout=30)  # sets the _xsrf cookie the form must return
        login = session.post(f"{url}/hub/login", allow_redirects=False, timeout=30,
                             data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf")})
        assert login.status_code == 302, f"{name} could not log in ({login.status_code})"
        # the token a frontend gets for API calls, asked for with the login's cookie
        reply = session.post(f"{url}/hub/api/users/{name}/tokens", json={"note": "test", "expires_in": 3600},
                             headers={"X-XSRFToken": session.cookies.get("_xsrf", "")}, timeout=30)
        assert reply.status_code == 201, reply.text
        self.token = str(reply.json()["token"])
        self.headers = {"Authorization": f"token {self.token}"}

    def start_server(self, timeout: float = 120) -> None:
        self.request_server()
        self.wait_server(timeout)

    def request_server(self) -> None:
        reply = requests.post(f"{self.url}/hub/api/users/{self.name}/server", headers=self.headers, timeout=30)
        assert reply.status_code in (201, 202), reply.text

    def wait_server(self, timeout: float = 120) -> None:
        model: dict[str, Any] = {}

        def ready() -> bool:
            model.update(requests.get(f"{self.url}/hub/api/users/{self.name}", headers=self.headers,
                                      timeout=30).json())
            return bool((model.get("servers") or {}).get("", {}).get("ready"))

        wait_until(ready, timeout, f"{self.name}'s server started", log=lambda: str(model), interval=0.5)

    def get(self, path: str) -> requests.Response:
        """GET a path of the hub's proxy (``/user/NAME/...``, ``/services/...``) as this user."""
        return requests.get(f"{self.url}{path}", headers=self.headers, timeout=30)

    def gateway_clusters(self) -> dict[str, Any]:
        """This user's active clusters, asked of the hub's dask-gateway service with their token."""
        reply = requests.get(f"{self.url}/services/dask-gateway/api/v1/clusters/",
                             headers={"Authorization": f"jupyterhub {self.token}"}, timeout=30)
        reply.raise_for_status()
        return dict(reply.json())

    def kernel(self) -> RemoteKernel:
        reply = requests.post(f"{self.url}/user/{self.name}/api/kernels", headers=self.headers,
                              json={"name": "python3"}, timeout=60)
        reply.raise_for_status()
        return RemoteKernel(self, str(reply.json()["id"]))


class RemoteKernel:
    """A kernel of a user's server, driven over its websocket; use as a context manager."""

    def __init__(self, user: HubUser, kernel_id: str):
        self.user, self.id = user, kernel_id
        ws_url = user.url.replace("http", "ws", 1) + f"/user/{user.name}/api/kernels/{kernel_id}/channels"
        self.ws = websocket.create_connection(ws_url, header=[f"Authorization: token {user.token}"], timeout=300)
        self.session = uuid.uuid4().hex

    def __enter__(self) -> RemoteKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.ws.close()
        requests.delete(f"{self.user.url}/user/{self.user.name}/api/kernels/{self.id}",
                        headers=self.user.headers, timeout=60)

    def run(self, code: str, timeout: float = 180) -> Reply:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": self.user.name, "session": self.session,
                  "msg_type": "execute_request", "version": "5.3",
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        self.ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": content,
                                 "buffers": [], "channel": "shell"}))
        outputs: list[dict[str, Any]] = []
        idle = reply = None
        deadline = time.monotonic() + timeout
        while idle is None or reply is None:
            self.ws.settimeout(max(1.0, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {code[:60]!r} within {timeout} s")
            msg = json.loads(self.ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = msg
            elif kind == "execute_reply":
                reply = msg
            elif kind in ("stream", "execute_result", "display_data", "error", "update_display_data"):
                outputs.append(msg)
        return Reply(reply["content"]["status"], reply["content"].get("ename"), outputs)

    def ok(self, code: str, timeout: float = 180) -> Reply:
        reply = self.run(code, timeout)
        assert reply.status == "ok", reply.text
        return reply
