"""Open grants from the hub_viz service, traded once for a viewer cookie.

The service decides who may see a dashboard (shares, groups, every hub user,
public) and sends the viewer to ``P _hub_viz/enter?grant_token=<token>``. The grant
is signed with the service's private key, names this server as audience,
lives a minute and is accepted once. The launcher then sets its own signed
cookie, renewed while the viewer is active and dropped after
``COOKIE_SECONDS`` without a request. The cookie is host-only (no ``Domain``):
on HTTPS named ``__Host-hub-viz-viewer-<server>`` (so ``Secure``, ``Path=/``,
and no other site can set one of that name), on plain HTTP ``hub-viz-viewer``
on this server's path. Cookies of that name that do not verify are ignored;
two that verify but disagree (one tossed in from a sibling host) admit nobody.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from typing import Any
from urllib.parse import urlsplit

from tornado import web
from tornado.httpclient import AsyncHTTPClient

log = logging.getLogger("hub_viz.launcher")

COOKIE_NAME = "hub-viz-viewer"
COOKIE_SECONDS = 3600


class ConflictingCookies(web.HTTPError):
    """Two valid viewer cookies naming different viewers: someone set one from elsewhere."""

    def __init__(self) -> None:
        super().__init__(
            403,
            "Two different sign-ins for this dashboard came with the request (another site "
            "may have set one). Clear this site's cookies and open the dashboard again.",
        )


def host_cookie_name(prefix: str) -> str:
    """The HTTPS cookie name: ``__Host-`` and this server's identity (from its prefix)."""
    digest = hashlib.sha256(prefix.encode()).hexdigest()[:16]
    return f"__Host-{COOKIE_NAME}-{digest}"


def cookie_values(handler: web.RequestHandler, name: str) -> list[str]:
    """Every value the request carries for cookie ``name`` (duplicates included)."""
    values = []
    for header in handler.request.headers.get_list("Cookie"):
        for piece in header.split(";"):
            key, sep, value = piece.strip().partition("=")
            if sep and key.strip() == name:
                values.append(value.strip())
    return values


class GrantKeeper:
    """Verifies grants for one server and keeps the set of grants already used."""

    def __init__(self, public_key: str, prefix: str, owner: str, server: str) -> None:
        self.public_key = public_key
        self.prefix = prefix
        self.owner = owner
        self.server = server
        self._used: dict[str, float] = {}
        self._verifier: Any = None
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}

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

    def cookie_name(self, handler: web.RequestHandler) -> str:
        """``__Host-hub-viz-viewer-<server>`` on HTTPS, ``hub-viz-viewer`` on plain HTTP."""
        return host_cookie_name(self.prefix) if handler.request.protocol == "https" else COOKIE_NAME

    def set_cookie(
        self, handler: web.RequestHandler, viewer: str, embed: bool = False, page: bool = False
    ) -> None:
        """This server's viewer cookie: host-only, ``__Host-`` on HTTPS. ``page``: the
        service's card capture (see :meth:`page_cookie`)."""
        data = {"sub": viewer, "exp": time.time() + COOKIE_SECONDS, "embed": embed}
        if page:
            data["page"] = True
        value = json.dumps(data)
        name = self.cookie_name(handler)
        signed = handler.create_signed_value(name, value).decode()
        if handler.request.protocol == "https":
            # __Host-: Secure, Path=/ and no Domain, or browsers refuse it. Inside another
            # site's frame it must be SameSite=None, partitioned per embedding site (CHIPS).
            same_site = "None; Partitioned" if embed else "Lax"
            attributes = f"Path=/; Secure; HttpOnly; SameSite={same_site}"
        else:
            # Embeds need HTTPS (SameSite=None requires Secure): on plain HTTP the
            # browser drops an embed's cookie, as it always did.
            attributes = f"Path={self.prefix}; HttpOnly; " + (
                "SameSite=None; Secure; Partitioned" if embed else "SameSite=Lax"
            )
        handler.add_header("Set-Cookie", f"{name}={signed}; {attributes}")

    def clear_cookie(self, handler: web.RequestHandler) -> None:
        """Expire this server's viewer cookie in the browser."""
        name = self.cookie_name(handler)
        path = "/" if name.startswith("__Host-") else self.prefix
        secure = "; Secure" if name.startswith("__Host-") else ""
        handler.add_header(
            "Set-Cookie",
            f"{name}=; Path={path}{secure}; HttpOnly; Max-Age=0; "
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        )

    def viewer_from_cookie(self, handler: web.RequestHandler) -> dict[str, Any] | None:
        """The viewer named by a valid cookie (renewed when half used), else None.

        Cookies of this name that do not verify are ignored; valid ones naming
        different viewers raise :class:`ConflictingCookies`.
        """
        name = self.cookie_name(handler)
        found: dict[str, dict[str, Any]] = {}
        now = time.time()
        for value in cookie_values(handler, name):
            data = self._cookie_data(handler, name, value, now)
            if data is not None:
                found[data["sub"]] = data
        if not found:
            return None
        if len(found) > 1:
            log.warning("Refused %d valid viewer cookies naming different viewers", len(found))
            raise ConflictingCookies()
        data = next(iter(found.values()))
        viewer = data["sub"]
        if data["exp"] - now < COOKIE_SECONDS / 2:
            self.set_cookie(handler, viewer, bool(data.get("embed")), bool(data.get("page")))
        return {
            "kind": "grant",
            "name": viewer or None,
            "anonymous": not viewer,
            "embed": bool(data.get("embed")),
        }

    def page_cookie(self, handler: web.RequestHandler) -> bool:
        """Does the request carry a valid cookie from a ``page`` grant (the service's card
        capture, which loads the dashboard as a tab's page, outside the open page)?"""
        name = self.cookie_name(handler)
        now = time.time()
        return any(
            (data := self._cookie_data(handler, name, value, now)) and data.get("page")
            for value in cookie_values(handler, name)
        )

    VERIFIED_MOST = 1024  # cookie values whose signature was checked, kept for later requests

    def _cookie_data(
        self, handler: web.RequestHandler, name: str, value: str, now: float
    ) -> dict[str, Any] | None:
        """The claims of a cookie value signed by this launcher and not expired, else None.

        A value's signature is checked once: the claims of values that verified are
        kept (a viewer sends the same cookie with every request); expiry is checked
        every time.
        """
        key = (name, value)
        data = self._verified.get(key)
        if data is None:
            data = self._verify_cookie(handler, name, value)
            if data is None:
                return None
            if len(self._verified) >= self.VERIFIED_MOST:
                self._verified.pop(next(iter(self._verified)))
            self._verified[key] = data
        return data if data["exp"] >= now else None

    @staticmethod
    def _verify_cookie(handler: web.RequestHandler, name: str, value: str) -> dict[str, Any] | None:
        raw = web.decode_signed_value(
            handler.application.settings["cookie_secret"], name, value, max_age_days=1
        )
        if not raw:
            return None
        try:
            data = json.loads(raw)
            data["sub"], data["exp"] = str(data["sub"]), float(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        return data

    def header_grant(self, handler: web.RequestHandler) -> dict[str, Any] | None:
        """The claims of an ``Authorization: HubVizGrant <grant>`` header (the service's)."""
        from ..signing import GRANT_HEADER_SCHEME  # on first use: keeps start-up light

        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        return self.redeem(token.strip()) if scheme == GRANT_HEADER_SCHEME else None

    def header_is_owner(self, handler: web.RequestHandler, owner: str) -> bool:
        """``Authorization: HubVizGrant <grant>`` naming the owner (the service reading logs)."""
        from ..signing import GRANT_HEADER_SCHEME  # on first use: keeps start-up light

        scheme, _, token = handler.request.headers.get("Authorization", "").partition(" ")
        if scheme != GRANT_HEADER_SCHEME:
            return False
        claims = self.redeem(token.strip())
        return claims is not None and claims.get("sub") == owner


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
        return cls(
            os.environ.get("HUB_VIZ_EMBED_ORIGINS_URL", ""),
            open_url=os.environ.get("HUB_VIZ_OPEN_URL", ""),
        )

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
    return (
        scheme in ("http", "https")
        and bool(sep)
        and bool(rest)
        and all(c.isalnum() or c in ".-:[]" for c in rest)
    )
