"""On the isolated layout a dashboard server answers pages only on its own host.

The hub links to a server on its user's host (``<user>.<domain>``: the spawn
page, the home page's links). The proxy routes that path there too
(:class:`hub_viz.hubproxy.DashboardProxy`), and the launcher answers every
request on that host with a redirect to the same path on the server's own
host, so nothing of the author's ever loads on the user's origin.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from tornado import httputil, web

from .forwarded import TrustedOrigin


class OwnHost:
    """The server's public URL and the one host (its user's) sent there."""

    def __init__(self, public_url: str, user_host: str) -> None:
        parts = urlsplit(public_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.user_host = user_host.lower()

    @classmethod
    def from_env(cls) -> OwnHost | None:
        public_url = os.environ.get("HUB_VIZ_PUBLIC_URL", "")
        user_host = os.environ.get("HUB_VIZ_USER_HOST", "")
        return cls(public_url, user_host) if public_url and user_host else None

    @property
    def host(self) -> str:
        return (urlsplit(self.origin).hostname or "").lower()

    def redirect_for(self, request: httputil.HTTPServerRequest) -> str | None:
        """Where a request that came to the user's host belongs, else None."""
        host = (urlsplit(f"//{request.host}").hostname or "").lower()
        return self.origin + request.uri if host == self.user_host else None

    def foreign(self, request: httputil.HTTPServerRequest) -> bool:
        """A request for another host of the hub's domain (a stale route): never served.

        The hub's probe and the service come by address or by this server's host.
        """
        host = (urlsplit(f"//{request.host}").hostname or "").lower()
        domain = self.user_host.split(".", 1)[-1]
        return (host == domain or host.endswith("." + domain)) and host not in (
            self.host,
            self.user_host,
        )


class OwnHostRedirect(web.RequestHandler):
    """302 to the server's own host, whatever the method; no body of the app's."""

    def initialize(self, url: str) -> None:
        self.url = url

    async def prepare(self) -> None:
        self.redirect(self.url)


class LauncherApplication(web.Application):
    """The launcher's tornado application: every request gets the origin the launcher
    trusts (``origin``, :mod:`hub_viz.launcher.forwarded`), and one for the user's host
    is sent to the server's."""

    def __init__(
        self,
        *args: Any,
        own_host: OwnHost | None = None,
        origin: TrustedOrigin | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.own_host = own_host
        self.origin = origin or TrustedOrigin()

    def find_handler(self, request: httputil.HTTPServerRequest, **kwargs: Any) -> Any:
        self.origin.apply(request)
        if self.own_host is not None:
            url = self.own_host.redirect_for(request)
            if url:
                return self.get_handler_delegate(request, OwnHostRedirect, {"url": url})
            if self.own_host.foreign(request):
                return self.get_handler_delegate(request, web.ErrorHandler, {"status_code": 404})
        return super().find_handler(request, **kwargs)
