"""configurable-http-proxy, minus the proxy's guess at server activity.

configurable-http-proxy stamps a route's ``last_activity`` on every request it
forwards, and the hub copies that stamp onto the server every
``JupyterHub.last_activity_interval``. For dashboards that would let crawlers,
background polling and the websocket of a forgotten tab keep a server alive
for ever. The launcher already reports real use (page navigations, new
websocket connections, phone-home pings through the service), so for user
servers the proxy's stamp is dropped and the hub's ``last_activity`` is what
the launcher and the service said.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy


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

    Configured with the ``ConfigurableHTTPProxy`` options, as before.
    """

    async def get_all_routes(self) -> dict[str, dict[str, Any]]:
        return without_server_activity(await super().get_all_routes())

    async def delete_user(self, user: Any, server_name: str = "") -> None:
        """Remove a server's route: the spawner's own, which on the isolated layout is on
        the server's host (JupyterHub's would name the user's)."""
        spawner = user.spawners.get(server_name) if server_name in user.spawners else None
        if spawner is None or not spawner.proxy_spec:
            await super().delete_user(user, server_name)
            return
        self.log.info("Removing user %s from proxy (%s)", user.name, spawner.proxy_spec)
        await self.delete_route(spawner.proxy_spec)


__all__ = ["DashboardProxy", "without_server_activity"]
