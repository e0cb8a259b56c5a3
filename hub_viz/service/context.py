"""What the service's handlers share (:class:`ServiceContext`): store, hub client,
deployer, signer, policy and URLs, made once by :class:`hub_viz.service.app.DashboardService`."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import HTTPClientError, HTTPRequest

from ..errors import HubVizError
from ..signing import GRANT_HEADER_SCHEME, Signer
from .activity import ActivityCoalescer, PingLimiter
from .dashboards import Policy
from .deploy import Deployer
from .embeds import EmbedTokens
from .hubapi import HubClient
from .store import Dashboard, Store
from .thumbnails import Thumbnailer
from .versions import Sources
from .webhooks import HookKeys

log = logging.getLogger("hub_viz.service")


def _port(url: str) -> str:
    port = urlsplit(url).port
    return f":{port}" if port else ""


@dataclass
class ServiceContext:
    """What handlers share: store, hub client, deployer, policy and URLs."""

    store: Store
    hub: HubClient
    deployer: Deployer
    signer: Signer
    policy: Policy
    prefix: str
    hub_base_url: str  # the hub's public base URL: absolute on the isolated layout
    proxy_url: str
    activity: ActivityCoalescer  # viewers' activity, coalesced before it reaches the hub
    embeds: EmbedTokens  # embed links' tokens
    hooks: HookKeys  # push webhooks' ids and secrets
    public_prefix: str = ""  # the service's prefix as a browser elsewhere reaches it
    thumbnails: Thumbnailer = field(default_factory=Thumbnailer)
    pings: PingLimiter = field(default_factory=PingLimiter)
    ping_seconds: float = 30
    # where versions pin their source, webhook secrets, and branch following
    sources: Sources = field(default_factory=Sources)
    follower: Any = None

    def internal_server_url(self, owner: str, name: str) -> tuple[str, dict[str, str]]:
        """A server's URL through the proxy, and the ``Host`` its route needs."""
        layout = self.deployer.layout
        host = layout.server_host(owner, name)
        url = self.proxy_url.rstrip("/") + layout.server_path(owner, name)
        return url, ({"Host": host + _port(self.proxy_url)} if host else {})

    async def _probe(self, owner: str, name: str) -> tuple[int, dict[str, Any] | None]:
        """The launcher's probe (``P api``) asked with a grant: (status, body); status 0
        when the proxy URL did not answer, body None when it is not JSON."""
        url, headers = self.internal_server_url(owner, name)
        grant = self.signer.grant(owner, name, None)
        headers = {**headers, "Authorization": f"{GRANT_HEADER_SCHEME} {grant}"}
        try:
            response = await self.hub.client.fetch(
                HTTPRequest(
                    url + "api", headers=headers, request_timeout=5, follow_redirects=False
                ),
                raise_error=False,
            )
        except (OSError, HTTPClientError) as e:
            log.debug("Cannot ask %s/%s whether its app answers: %s", owner, name, e)
            return 0, None
        try:
            body = json.loads(response.body) if response.code == 200 else None
        except ValueError:
            body = None
        return response.code, body if isinstance(body, dict) else None

    async def server_answers(self, owner: str, name: str) -> bool:
        """Whether the server's launcher answers and says its app does (``P api``, with a
        grant). False only on a clear no: the launcher says its app is down, or the proxy
        cannot reach the launcher (502/503). Anything that says nothing about the app
        (the proxy URL unreachable, a redirect or TLS in front of it) is not held
        against it: viewers are not kept from a dashboard the hub calls ready."""
        code, body = await self._probe(owner, name)
        if code in (502, 503):
            return False
        if code != 200:
            if code:
                log.debug("%s/%s's launcher probe answered %s", owner, name, code)
            return True
        if body is not None:
            self._pools[(owner, name)] = (time.monotonic(), body.get("pool"))
        return body is None or body.get("app", "ready") == "ready"

    _pools: dict[tuple[str, str], tuple[float, Any]] = field(default_factory=dict)

    async def pool_status(self, owner: str, name: str, max_age: float = 1.0) -> dict | None:
        """The app's preheated pool as its launcher reports it (Voilà's ``warm_kernels``):
        ``ready``, ``starting``, ``estimate_seconds``...; None when it has none. Asked
        at most once per ``max_age`` seconds per server (a class opening at once)."""
        key = (owner, name)
        seen = self._pools.get(key)
        if seen is None or time.monotonic() - seen[0] > max_age:
            code, body = await self._probe(owner, name)
            pool = (body or {}).get("pool") if code == 200 else None
            self._pools[key] = (time.monotonic(), pool)
            while len(self._pools) > 1000:
                self._pools.pop(next(iter(self._pools)))
            seen = self._pools[key]
        return seen[1] if isinstance(seen[1], dict) else None

    async def statuses(self, dashboards: list[Dashboard], viewer: str) -> dict[int, str]:
        """ "running", "starting" or "stopped" for each dashboard, as ``viewer`` would open it."""
        users: dict[str, dict[str, Any] | None] = {}
        out = {}
        for d in dashboards:
            owner, name = self.deployer.locate(d, viewer)
            if owner not in users:
                users[owner] = await self.hub.user(owner)
            server = ((users[owner] or {}).get("servers") or {}).get(name)
            if not server:
                out[d.id] = "stopped"
            elif server.get("ready"):
                out[d.id] = "running"
            else:
                out[d.id] = "starting" if server.get("pending") == "spawn" else "stopped"
        return out

    async def check_targets(self, fields: dict[str, Any]) -> list[str]:
        """400 when a group to share with is unknown to the hub; the users not known yet
        (kept, pending their first login)."""
        missing = await self.deployer.missing_groups(fields.get("share_groups", []))
        if missing:
            names = ", ".join(repr(g) for g in missing)
            raise HubVizError(
                f"The hub has no group {names}; check the names (a course's "
                "groups appear once someone opens the hub from the course)."
            )
        return await self.deployer.pending_users(fields.get("share_users", []))


__all__ = ["ServiceContext"]
