"""configurable-http-proxy, minus the proxy's guess at server activity.

configurable-http-proxy stamps a route's ``last_activity`` on every request it
forwards, and the hub copies that stamp onto the server every
``JupyterHub.last_activity_interval``. For dashboards that would let crawlers,
background polling and the websocket of a forgotten tab keep a server alive
for ever. Real use is reported elsewhere (the open page's phone-home pings
through the service; page navigations and new websockets only by launchers
of servers started without the service), so for user servers the proxy's
stamp is dropped and the hub's ``last_activity`` is what the service and
the launcher said.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.utils import url_escape_path

from .hubstart import prepare_service


def without_server_activity(routes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Drop ``last_activity`` from the data of user-server routes (in place; returned)."""
    for route in routes.values():
        data = route.get("data")
        if isinstance(data, dict) and "user" in data and "server_name" in data:
            data.pop("last_activity", None)
    return routes


class DashboardProxy(ConfigurableHTTPProxy):
    """:class:`ConfigurableHTTPProxy` whose routes carry no activity for user servers,
    and whose server routes are the spawners' own (see ``hub_viz.layout``).

    Configured with the ``ConfigurableHTTPProxy`` options, as before. The hub makes
    its proxy before it starts its services: hub_viz's start-up runs here
    (:func:`hub_viz.hubstart.prepare_service`).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.app is not None and hasattr(self.app, "services"):
            prepare_service(self.app.config, self.app.services)

    async def get_all_routes(self) -> dict[str, dict[str, Any]]:
        # the hub checks routes against its own list: it never sees the aliases
        routes = await super().get_all_routes()
        return without_server_activity(
            {spec: r for spec, r in routes.items() if ALIAS not in (r.get("data") or {})}
        )

    async def add_user(self, user: Any, server_name: str = "") -> None:
        """A server's route (the spawner's own: on the isolated layout its own host) and,
        when that is not the user's host, the same path on the user's host, where the
        hub's links point; the launcher answers there only with a redirect to its host."""
        await super().add_user(user, server_name)
        alias = user_host_route(user, server_name)
        if alias:
            spawner = user.spawners[server_name]
            await self.add_route(
                alias, spawner.server.host, {ALIAS: True, "server_name": server_name}
            )

    async def check_routes(self, user_dict: Any, service_dict: Any, routes: Any = None) -> None:
        """The hub's check, then the aliases of servers that no longer run removed (the
        hub never sees them, so it cannot)."""
        await super().check_routes(user_dict, service_dict, routes)
        wanted = {
            user_host_route(user, name)
            for user in user_dict.values()
            for name, spawner in list(user.spawners.items())
            if spawner.ready or spawner.pending
        }
        for spec, route in (await ConfigurableHTTPProxy.get_all_routes(self)).items():
            if ALIAS in (route.get("data") or {}) and spec not in wanted:
                self.log.info("Removing the stale alias route %s", spec)
                await self.delete_route(spec)

    async def delete_user(self, user: Any, server_name: str = "") -> None:
        """Remove a server's route: the spawner's own, which on the isolated layout is on
        the server's host (JupyterHub's would name the user's), and its alias."""
        spawner = user.spawners.get(server_name) if server_name in user.spawners else None
        if spawner is None or not spawner.proxy_spec:
            await super().delete_user(user, server_name)
            return
        self.log.info("Removing user %s from proxy (%s)", user.name, spawner.proxy_spec)
        alias = user_host_route(user, server_name)
        if alias:
            await self.delete_route(alias)
        await self.delete_route(spawner.proxy_spec)


ALIAS = "hub_viz_alias"  # route data of a server's path on its user's host


def user_host_route(user: Any, server_name: str) -> str:
    """The server's path on its user's host when its own route is elsewhere, else ``""``."""
    spawner = user.spawners.get(server_name) if server_name in user.spawners else None
    if spawner is None or not server_name:
        return ""
    default = f"{user.proxy_spec}{url_escape_path(server_name)}/"
    return default if default != spawner.proxy_spec else ""


__all__ = ["DashboardProxy", "without_server_activity"]
