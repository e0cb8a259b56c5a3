"""What a server's own API token may ask or tell the service.

``POST S api/servers/ended``: the hub's spawner says its server ended without
anyone asking it to stop (see :meth:`hub_viz.service.deploy.Deployer.server_ended`).

``POST S api/servers/stopping``: the hub's spawner says its server is being
stopped (by anyone: the culler, an admin, the hub's API), so that the service
stops answering "ready" for it at once
(:meth:`hub_viz.service.deploy.Deployer.server_stopping`).

``GET S api/viewer-access/<owner>/<slug>?viewer=<name>``: may a launcher still admit them?

A launcher that admitted a viewer with a one-time grant (its own cookie
since) asks this at most once a minute per viewer, so that a viewer who lost
access (the dashboard made private, a share removed, the dashboard
unpublished) is refused on their next request. The caller shows its
server's own API token (``JUPYTERHUB_API_TOKEN``); the hub says which
server that token belongs to, and the answer is a yes or no about whether
that server is where ``viewer`` (empty: anonymous) may see the dashboard.
Nothing else is told: any other token is refused, and a server that does
not serve the dashboard to that viewer gets "no".
"""

from __future__ import annotations

from typing import Any

from tornado import web

from ..frameworks import PER_VIEWER
from .base import BaseHandler
from .dashboards import Forbidden, can_view, server_for
from .store import Dashboard

VIEWER_MAX = 255


def token_servers(model: dict[str, Any] | None) -> set[str]:
    """``owner/name`` of each server the token's own user may access by a server scope.

    A launcher's token (JupyterHub's ``server`` role) carries exactly one:
    ``access:servers!server=<owner>/<name>``. A shared user's token has such
    scopes too, but for servers of someone else: those do not count.
    """
    if not model or model.get("kind", "user") != "user" or not model.get("name"):
        return set()
    lead = f"access:servers!server={model['name']}/"
    return {
        scope.split("=", 1)[1]
        for scope in model.get("scopes") or []
        if isinstance(scope, str) and scope.startswith(lead)
    }


class ServerTokenHandler(BaseHandler):
    """Handlers whose caller shows a server's own API token, never a cookie."""

    def check_xsrf_cookie(self) -> None:
        return  # no cookies here: the caller authenticates with its server's token

    async def token_servers(self) -> set[str]:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        model = None
        if scheme.lower() in ("token", "bearer") and token.strip():
            model = await self.hub_auth.user_for_token(token.strip(), sync=False)
        return token_servers(model)


class ServerEndedHandler(ServerTokenHandler):
    """The hub's spawner: its server ended without anyone asking it to stop (the app or
    launcher exited, it was killed); the server's open run is closed as "crashed"."""

    async def post(self) -> None:
        servers = await self.token_servers()
        if len(servers) != 1:
            raise web.HTTPError(403, "Only a server's own API token may report that it ended.")
        data = self.body_json()
        status = data.get("exit_status") if isinstance(data, dict) else None
        if isinstance(status, bool) or not isinstance(status, int):
            raise web.HTTPError(400, "'exit_status' must be the server's exit status, a number.")
        owner, name = servers.pop().split("/", 1)
        self.write_json({"closed": self.ctx.deployer.server_ended(owner, name, status)})


class ServerStoppingHandler(ServerTokenHandler):
    """The hub's spawner: its server is being stopped; no open is answered "ready" for it
    from what the hub said before."""

    async def post(self) -> None:
        servers = await self.token_servers()
        if len(servers) != 1:
            raise web.HTTPError(403, "Only a server's own API token may report that it stops.")
        owner, name = servers.pop().split("/", 1)
        self.ctx.deployer.server_stopping(owner, name)
        self.set_status(204)


class ViewerAccessHandler(ServerTokenHandler):
    async def get(self, owner: str, slug: str) -> None:
        servers = await self.token_servers()
        if not servers:
            raise web.HTTPError(
                403, "Only a dashboard's launcher may ask this, with its server's API token."
            )
        viewer = self.get_query_argument("viewer", "")
        if len(viewer) > VIEWER_MAX:
            raise web.HTTPError(
                400,
                f"'viewer' is a hub user name of at most {VIEWER_MAX} "
                "characters (empty for an anonymous viewer).",
            )
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
        allowed = d is not None and await self._may_use(d, viewer, servers)
        self.set_header("Cache-Control", "no-store")
        self.write_json({"allowed": allowed})

    async def _may_use(self, d: Dashboard, viewer: str, servers: set[str]) -> bool:
        """May ``viewer`` see ``d``, on one of ``servers``?"""
        try:
            serving = {"/".join(server_for(d, viewer or None))}
        except Forbidden:  # per-viewer dashboards have no anonymous viewers
            return False
        pool = self.ctx.deployer.pool
        if d.mode == PER_VIEWER and viewer and pool is not None:
            claimed = pool.claimed(d, viewer)
            if claimed:
                serving.add(f"{pool.user}/{claimed}")
        if not serving & servers:
            return False
        user = None
        if viewer:
            model = await self.ctx.hub.user(viewer)
            if not model:
                return False
            user = {
                "name": viewer,
                "admin": bool(model.get("admin")),
                "groups": list(model.get("groups") or []),
            }
        return can_view(d, user)


def access_routes(prefix: str) -> list[tuple[str, type]]:
    return [
        (f"{prefix}api/viewer-access/([^/]+)/([^/]+)", ViewerAccessHandler),
        (f"{prefix}api/servers/ended", ServerEndedHandler),
        (f"{prefix}api/servers/stopping", ServerStoppingHandler),
    ]
