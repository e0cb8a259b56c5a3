"""A tornado app on a free loopback port, for tests that need a real HTTP peer."""

from __future__ import annotations

from tornado import httpserver, netutil, web


def serve(app: web.Application) -> tuple[httpserver.HTTPServer, int]:
    """Start ``app`` on 127.0.0.1 at a free port; the server (to stop) and the port."""
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return server, sockets[0].getsockname()[1]
