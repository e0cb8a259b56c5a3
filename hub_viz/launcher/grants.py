"""Open grants from the hub_viz service, traded once for a viewer cookie.

The service decides who may see a dashboard (shares, groups, every hub user,
public) and sends the viewer to ``P _hub_viz/enter?grant_token=<token>``. The grant
is signed with the service's private key, names this server as audience,
lives a minute and is accepted once. The launcher then sets its own signed
cookie, valid on this server's path only, renewed while the viewer is active
and dropped after ``COOKIE_SECONDS`` without a request.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

from tornado import web
from tornado.httpclient import AsyncHTTPClient

COOKIE_NAME = "hub-viz-viewer"
COOKIE_SECONDS = 3600
GRANT_HEADER_SCHEME = "HubVizGrant"


class GrantKeeper:
    """Verifies grants for one server and keeps the set of grants already used."""

    def __init__(self, public_key: str, prefix: str, owner: str, server: str) -> None:
        self.public_key = public_key
        self.prefix = prefix
        self.owner = owner
        self.server = server
        self._used: dict[str, float] = {}
        self._verifier: Any = None

    @classmethod
    def from_env(cls, prefix: str, owner: str, server: str) -> GrantKeeper:
        return cls(os.environ.get("HUB_VIZ_SERVICE_KEY", ""), prefix, owner, server)

    def _verify(self, token: str) -> dict[str, Any] | None:
        if not self.public_key or not token or len(token) > 4096:
            return None
        if self._verifier is None:
            from ..signing import Verifier  # imported on first use: keeps start-up light

            self._verifier = Verifier(self.public_key)
        from ..signing import SignatureError

        try:
            return self._verifier.grant(token, self.owner, self.server)
        except SignatureError:
            return None

    def redeem(self, token: str) -> dict[str, Any] | None:
        """The grant's claims if it verifies and was never used, else None."""
        claims = self._verify(token)
        if claims is None:
            return None
        now = time.time()
        self._used = {jti: exp for jti, exp in self._used.items() if exp > now}
        jti = claims.get("jti")
        if not isinstance(jti, str) or jti in self._used:
            return None
        self._used[jti] = float(claims["exp"]) + 10
        return claims

    def set_cookie(self, handler: web.RequestHandler, viewer: str, embed: bool = False) -> None:
        value = json.dumps({"sub": viewer, "exp": time.time() + COOKIE_SECONDS, "embed": embed})
        if embed:
            # Inside another site's frame the cookie must be SameSite=None (which needs
            # Secure, so HTTPS), partitioned per embedding site (CHIPS).
            signed = handler.create_signed_value(COOKIE_NAME, value).decode()
            handler.add_header(
                "Set-Cookie",
                f"{COOKIE_NAME}={signed}; Path={self.prefix}; HttpOnly; SameSite=None; "
                "Secure; Partitioned",
            )
            return
        handler.set_signed_cookie(
            COOKIE_NAME,
            value,
            expires_days=None,
            path=self.prefix,
            httponly=True,
            samesite="Lax",
            secure=handler.request.protocol == "https",
        )

    def viewer_from_cookie(self, handler: web.RequestHandler) -> dict[str, Any] | None:
        """The viewer named by a valid cookie (renewed when half used), else None."""
        raw = handler.get_signed_cookie(COOKIE_NAME, max_age_days=1)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            viewer, exp = str(data["sub"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time()
        if exp < now:
            return None
        if exp - now < COOKIE_SECONDS / 2:
            self.set_cookie(handler, viewer, bool(data.get("embed")))
        return {"kind": "grant", "name": viewer or None, "anonymous": not viewer}

    def header_is_owner(self, handler: web.RequestHandler, owner: str) -> bool:
        """``Authorization: HubVizGrant <grant>`` naming the owner (the service reading logs)."""
        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme != GRANT_HEADER_SCHEME:
            return False
        claims = self.redeem(token.strip())
        return bool(claims) and claims.get("sub") == owner


class FrameAncestors:
    """``frame-ancestors`` for every response: the hub itself plus the live embed origins.

    The origins come from the service (``HUB_VIZ_EMBED_ORIGINS_URL``), polled
    every ``interval`` seconds; until the first answer, and for a dashboard
    without embed links, only the hub's own pages may frame the dashboard.
    """

    def __init__(self, url: str, interval: float = 10, open_url: str = "") -> None:
        self.url = url
        self.interval = interval
        self.origins: tuple[str, ...] = ()
        # On the isolated layout the open page that frames the dashboard is the
        # service's, on a host of its own: its origin comes from the open URL.
        parts = urlsplit(open_url)
        service = f"{parts.scheme}://{parts.netloc}"
        self.service_origin = service if parts.netloc and _is_origin(service) else ""

    @classmethod
    def from_env(cls) -> FrameAncestors:
        return cls(os.environ.get("HUB_VIZ_EMBED_ORIGINS_URL", ""),
                   open_url=os.environ.get("HUB_VIZ_OPEN_URL", ""))

    @property
    def header(self) -> str:
        service = (self.service_origin,) if self.service_origin else ()
        return " ".join(("frame-ancestors", "'self'", *service, *self.origins))

    async def refresh(self) -> None:
        try:
            response = await AsyncHTTPClient().fetch(self.url, request_timeout=5)
            origins = json.loads(response.body)["origins"]
        except Exception:  # keep the last known list; the next poll tries again
            return
        self.origins = tuple(o for o in origins if isinstance(o, str) and _is_origin(o))

    async def run(self) -> None:
        if not self.url:
            return
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)


def _is_origin(value: str) -> bool:
    scheme, sep, rest = value.partition("://")
    return scheme in ("http", "https") and bool(sep) and rest and all(
        c.isalnum() or c in ".-:[]" for c in rest
    )
