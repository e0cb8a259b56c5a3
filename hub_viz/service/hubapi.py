"""The hub's REST API as the service uses it, with the service's own token.

Only what the service needs, with the scopes listed in :data:`SERVICE_SCOPES`:
start, stop and read servers; grant and revoke shares; look up user and
group names; list active servers to notice when instances stop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

log = logging.getLogger("hub_viz.service")

SERVICE_SCOPES = (
    "servers",  # start, stop, read and delete dashboard servers (owner's and viewers')
    "list:users",  # find the servers that run, to record when instances stop
    "shares",  # share a shared dashboard's server with users and groups
    "read:users:name",  # check share targets exist (the hub needs it to share by name)
    "read:groups",  # the same for groups, and course groups' titles (their LTI properties)
    "read:users:groups",  # a viewer's groups, when a launcher re-checks their access
    "users:activity",  # phone-home pings and keep-warm windows, coalesced per server
)


# Requests to the hub under way at once: a class's opens each hold a start request
# (and a progress stream) until its instance is up; JupyterHub's own limit of starts
# at once (concurrent_spawn_limit, 100) decides, not this client.
MAX_REQUESTS = 512


class HubAPIError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _q(name: str) -> str:
    return quote(name, safe="")


class HubClient:
    """Async client of ``JUPYTERHUB_API_URL`` with the service token."""

    def __init__(self, api_url: str, token: str, max_clients: int = MAX_REQUESTS) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token
        # a client of its own: tornado's shared one, made before any configure() call,
        # sends 10 requests at once and queues the rest, and each per-viewer open holds
        # its start request until the instance is up (up to the hub's slow_spawn_timeout)
        self.client = AsyncHTTPClient(force_instance=True, max_clients=max_clients)

    async def _fetch(self, method: str, path: str, body: Any = None) -> HTTPResponse:
        """One call with the service token; HubAPIError carries the hub's message."""
        request = HTTPRequest(
            self.api_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None and method in ("GET", "HEAD") else json.dumps(body or {}),
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        try:
            return await self.client.fetch(request)
        except HTTPClientError as e:
            message = _message(e.response.body if e.response else b"") or str(e)
            raise HubAPIError(e.code, message) from None

    async def request(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()
    ) -> Any:
        """JSON request; returns the decoded body, or None for ``ok`` error codes."""
        try:
            response = await self._fetch(method, path, body)
        except HubAPIError as e:
            if e.status in ok:
                return None
            raise
        if not response.body:
            return {}
        return json.loads(response.body)

    # -- users and groups -------------------------------------------------

    async def user(self, name: str) -> dict[str, Any] | None:
        return await self.request("GET", f"/users/{_q(name)}", ok=(404,))

    async def create_user(self, name: str) -> None:
        """Create ``name`` on the hub unless it exists (the warm pool's user)."""
        await self.request("POST", f"/users/{_q(name)}", ok=(409,))

    async def group(self, name: str) -> dict[str, Any] | None:
        return await self.request("GET", f"/groups/{_q(name)}", ok=(404,))

    async def server(self, owner: str, name: str) -> dict[str, Any] | None:
        """The server's model (``ready``, ``pending``, ``url``), or None when not running."""
        user = await self.user(owner)
        if not user:
            return None
        return (user.get("servers") or {}).get(name)

    async def active_servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every running or starting server: (owner, server name) -> the hub's server model.

        The models carry ``ready``, ``pending`` and ``last_activity``.
        """
        found: dict[tuple[str, str], dict[str, Any]] = {}
        offset = 0
        while True:
            users = await self.request(
                "GET", f"/users?state=active&offset={offset}&limit=200&include_stopped_servers=0"
            )
            items = users["items"] if isinstance(users, dict) else users
            for user in items:
                for name, server in (user.get("servers") or {}).items():
                    found[(user["name"], name)] = server or {}
            if isinstance(users, dict) and users.get("_pagination", {}).get("next"):
                offset += len(items)
                continue
            return found

    # -- servers ----------------------------------------------------------

    async def start(self, owner: str, name: str, options: dict[str, Any]) -> int:
        """Ask the hub to start a server; 201 started, 202 pending, 0 already running."""
        try:
            response = await self._fetch("POST", f"/users/{_q(owner)}/servers/{_q(name)}", options)
        except HubAPIError as e:
            if e.status == 400 and ("already running" in e.message or "pending" in e.message):
                return 0
            raise
        return response.code

    async def stop(self, owner: str, name: str, remove: bool = False) -> None:
        await self.request(
            "DELETE",
            f"/users/{_q(owner)}/servers/{_q(name)}",
            {"remove": remove},
            ok=(404,),
        )

    async def progress(self, owner: str, name: str) -> AsyncIterator[dict[str, Any]]:
        """The hub's progress events for a starting server (server-sent events)."""
        queue: list[bytes] = []
        buffer = b""

        def on_chunk(chunk: bytes) -> None:
            nonlocal buffer
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                queue.append(event)

        request = HTTPRequest(
            f"{self.api_url}/users/{_q(owner)}/servers/{_q(name)}/progress",
            headers={"Authorization": f"token {self.token}", "Accept": "text/event-stream"},
            streaming_callback=on_chunk,
            request_timeout=600,
        )
        fetch = asyncio.ensure_future(self.client.fetch(request, raise_error=False))
        try:
            while True:
                while queue:
                    raw = queue.pop(0)
                    for line in raw.decode(errors="replace").splitlines():
                        if line.startswith("data:"):
                            try:
                                yield json.loads(line[5:].strip())
                            except ValueError:
                                continue
                if fetch.done():
                    if not queue:
                        return
                    continue
                await asyncio.wait([fetch], timeout=0.1)
        finally:
            if not fetch.done():
                fetch.cancel()

    async def activity(self, owner: str, server: str, when: str) -> None:
        """Record activity of one server (what the idle culler reads)."""
        await self.request(
            "POST",
            f"/users/{_q(owner)}/activity",
            {"last_activity": when, "servers": {server: {"last_activity": when}}},
        )

    # -- shares -----------------------------------------------------------

    async def shares(self, owner: str, name: str) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/shares/{_q(owner)}/{_q(name)}", ok=(404,))
        if not data:
            return []
        return data.get("items", data) if isinstance(data, dict) else data

    async def share(self, owner: str, name: str, *, user: str = "", group: str = "") -> None:
        body = {"user": user} if user else {"group": group}
        await self.request("POST", f"/shares/{_q(owner)}/{_q(name)}", body)

    async def revoke(self, owner: str, name: str, *, user: str = "", group: str = "") -> None:
        body = {"user": user} if user else {"group": group}
        await self.request("PATCH", f"/shares/{_q(owner)}/{_q(name)}", body, ok=(404,))

    async def revoke_all(self, owner: str, name: str) -> None:
        await self.request("DELETE", f"/shares/{_q(owner)}/{_q(name)}", ok=(404,))


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:300]
    return str(data.get("message", "")) if isinstance(data, dict) else ""
