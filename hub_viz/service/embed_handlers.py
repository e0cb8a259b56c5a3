"""Embed links over HTTP: managing grants, the embed page and its open, progress and ping.

::

    GET    S api/dashboards/<owner>/<slug>/embeds        the author's embed links
    POST   S api/dashboards/<owner>/<slug>/embeds        new link: origins, anonymous, expiry
    DELETE S api/dashboards/<owner>/<slug>/embeds/<id>   revoke
    GET    S api/embed-origins/<owner>/<slug>            live origins, for launchers (public)
    GET    S embed/<token>                               the page an iframe shows
    GET    S embed/<token>/login                         top-level: hub login, ticket to the frame
    POST   S embed/<token>/session                       keep the frame's ticket (a cookie)
    POST   S embed/<token>/open | GET .../progress | POST .../ping
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tornado import web

from .base import BaseHandler
from .dashboards import can_view
from .embeds import (
    VIEWER_TICKET_HEADER,
    VIEWER_TICKET_HOURS,
    EmbedLoginNeeded,
    EmbedRefused,
    as_json,
    live_origins,
    validate_embed,
)
from .openflow import OpenMixin
from .store import Dashboard, EmbedGrant, utcnow

NAME = r"([^/]+)"
# the viewer ticket kept for the embedding site only: partitioned (CHIPS), on the link's path
VIEWER_COOKIE = "hub-viz-embed-viewer"
TOKEN = r"([A-Za-z0-9_.-]{10,2000})"


class EmbedsHandler(BaseHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            grants = db.scalars(
                select(EmbedGrant).where(EmbedGrant.dashboard_id == d.id).order_by(EmbedGrant.id)
            ).all()
            items = [as_json(g, self.embed_url(g), d.title) for g in grants]
        self.write_json({"items": items})

    async def post(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        data = self.body_json()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            fields = validate_embed(data, d)
            grant = EmbedGrant(dashboard_id=d.id, created_by=user["name"], **fields)
            db.add(grant)
            db.commit()
            self.write_json(as_json(grant, self.embed_url(grant), d.title), 201)

    def embed_url(self, grant: EmbedGrant) -> str:
        return (
            f"{self.request.protocol}://{self.request.host}{self.ctx.prefix}embed/"
            + self.ctx.embeds.encode(grant)
        )


class EmbedRevokeHandler(BaseHandler):
    async def delete(self, owner: str, slug: str, grant_id: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            grant = db.get(EmbedGrant, int(grant_id))
            if grant is None or grant.dashboard_id != d.id:
                raise web.HTTPError(404, "No embed link %s for %s/%s.", grant_id, owner, slug)
            if grant.revoked is None:
                grant.revoked = utcnow()
                db.commit()
        self.set_status(204)
        self.finish()


class EmbedOriginsHandler(BaseHandler):
    """Deliberately public: the origins a launcher lists in ``frame-ancestors``.

    The same list is in every response of the dashboard; an unknown dashboard
    answers an empty list, exactly like one without embed links.
    """

    def get(self, owner: str, slug: str) -> None:
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
            origins = live_origins(db, d.id) if d is not None else []
        self.set_header("Cache-Control", "no-store")
        self.write_json({"origins": origins})


class EmbedBase(OpenMixin):
    """Resolves ``<token>`` to a live grant, its dashboard and the viewer."""

    json_errors = True

    def load(self, token: str) -> tuple[EmbedGrant, Dashboard]:
        """The live grant a token names and its dashboard; EmbedRefused (403) otherwise."""
        grant_id = self.ctx.embeds.grant_id(token)
        with self.ctx.store.session() as db:
            grant = db.get(EmbedGrant, grant_id)
            if grant is None or grant.revoked is not None:
                raise EmbedRefused("This embed link was revoked by its author.")
            if not grant.live():
                raise EmbedRefused("This embed link has expired; ask its author for a new one.")
            d = db.get(Dashboard, grant.dashboard_id)
        if d is None:
            raise EmbedRefused("The dashboard of this embed link was unpublished.")
        return grant, d

    async def viewer(self, grant: EmbedGrant, d: Dashboard) -> str | None:
        """Who watches: nobody in particular for anonymous links, else the logged-in viewer
        (by the service's login cookie, or in a course site's frame by a viewer ticket)."""
        if grant.anonymous:
            if d.visibility != "public":
                raise EmbedRefused("This dashboard is no longer public.")
            return None
        user = await self.current() or await self.ticket_user(grant)
        if not can_view(d, user):
            raise EmbedRefused("You may not see this dashboard.")
        self._embed_viewer = user
        return user["name"]

    def may_view(self, d: Dashboard) -> bool:
        # the viewer found by cookie or ticket (None for an anonymous link)
        return can_view(d, getattr(self, "_embed_viewer", None))

    async def ticket_user(self, grant: EmbedGrant) -> dict[str, Any]:
        """The hub's model of the viewer a ticket names (their groups as they are now)."""
        ticket = self.request.headers.get(VIEWER_TICKET_HEADER, "") or self.get_cookie(
            VIEWER_COOKIE, ""
        )
        if not ticket:
            raise EmbedLoginNeeded("Log in to the hub to see this dashboard.")
        name = self.ctx.embeds.ticket_viewer(ticket, grant.id)
        user = await self.ctx.hub.user(name)
        if user is None:
            raise EmbedLoginNeeded("Log in to the hub to see this dashboard.")
        return user

    async def resolve(self, token: str) -> tuple[EmbedGrant, Dashboard, str | None]:
        grant, d = self.load(token)
        return grant, d, await self.viewer(grant, d)

    def frame_for(self, grant: EmbedGrant | None) -> None:
        """This response may be framed by the grant's origins (and the hub itself)."""
        origins = " ".join(grant.origins) if grant is not None else ""
        self.set_header("Content-Security-Policy", f"frame-ancestors 'self' {origins}".strip())


class EmbedPage(EmbedBase):
    json_errors = False

    async def get(self, token: str) -> None:
        self.set_header("Referrer-Policy", "no-referrer")
        grant, d = self.load(token)
        self.frame_for(grant)
        try:
            await self.viewer(grant, d)
        except EmbedLoginNeeded:
            # no cookie in a course site's frame: the page asks for a login (or uses the
            # ticket an earlier login left in this frame's session storage)
            self.set_status(401)
            self._render(d, token, login_needed=True)
            return
        self._render(d, token, login_needed=False)

    def _render(self, d: Dashboard, token: str, login_needed: bool) -> None:
        xsrf = self.xsrf_token
        self.render(
            "embed.html",
            title=d.title,
            api=f"{self.ctx.prefix}embed/{token}",
            login_url=f"{self.ctx.prefix}embed/{token}/login" if login_needed else "",
            open_url=f"{self.ctx.prefix}open/{d.owner}/{d.slug}" if login_needed else "",
            ping_seconds=self.ctx.ping_seconds,
            prefix=self.ctx.prefix,
            hub_base=self.ctx.hub_base_url,
            xsrf=xsrf.decode() if isinstance(xsrf, bytes) else xsrf,
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # An error inside a course site's frame should be readable there.
        self.set_header("Content-Security-Policy", "frame-ancestors *")
        super().write_error(status_code, **kwargs)


class EmbedLogin(EmbedBase):
    """The top-level window the frame's "Log in" opens: the hub's login, then a viewer
    ticket handed to the frame that opened it (``postMessage`` to this origin only)."""

    json_errors = False

    async def get(self, token: str) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")
        grant, d = self.load(token)
        user = await self.current()
        if user is None:
            self.redirect(self.get_login_url())
            return
        if grant.anonymous:
            ticket = ""  # nothing to hand over: the link opens without a login
        elif can_view(d, user):
            ticket = self.ctx.embeds.viewer_ticket(grant.id, user["name"])
        else:
            raise EmbedRefused("You may not see this dashboard.")
        xsrf = self.xsrf_token
        self.render(
            "embed_login.html",
            title=d.title,
            user=user["name"],
            api=f"{self.ctx.prefix}embed/{token}",
            ticket=ticket,
            open_url=f"{self.ctx.prefix}open/{d.owner}/{d.slug}",
            prefix=self.ctx.prefix,
            hub_base=self.ctx.hub_base_url,
            xsrf=xsrf.decode() if isinstance(xsrf, bytes) else xsrf,
        )


class EmbedSession(EmbedBase):
    """Keeps the ticket the frame was handed as a cookie partitioned to the embedding
    site, so that reloading the course page stays logged in (frames of other sites
    never see it). Only from the ticket in the header: a cookie alone renews nothing."""

    async def post(self, token: str) -> None:
        grant, _d = self.load(token)
        ticket = self.request.headers.get(VIEWER_TICKET_HEADER, "")
        if not ticket:
            raise EmbedLoginNeeded("Log in to the hub to see this dashboard.")
        self.ctx.embeds.ticket_viewer(ticket, grant.id)
        self.add_header(
            "Set-Cookie",
            f"{VIEWER_COOKIE}={ticket}; Path={self.ctx.prefix}embed/{token}; "
            f"Max-Age={VIEWER_TICKET_HOURS * 3600}; HttpOnly; Secure; SameSite=None; Partitioned",
        )
        self.set_status(204)
        self.finish()


class EmbedOpen(EmbedBase):
    async def post(self, token: str) -> None:
        _grant, d, viewer = await self.resolve(token)
        progress = f"{self.ctx.prefix}embed/{token}/progress"
        self.write_json(await self.open_for(d, viewer, progress, embed=True))


class EmbedProgress(EmbedBase):
    async def get(self, token: str) -> None:
        _grant, d, viewer = await self.resolve(token)
        await self.stream_progress(d, viewer, embed=True)


class EmbedPing(EmbedBase):
    async def post(self, token: str) -> None:
        grant, d, viewer = await self.resolve(token)
        self.ping(d, viewer, viewer or f"embed:{grant.id}:{self.request.remote_ip}")
        self.set_status(204)
        self.finish()


class EmbedRendered(EmbedBase):
    async def post(self, token: str) -> None:
        _grant, d, viewer = await self.resolve(token)
        await self.page_rendered(d, viewer)
        self.set_status(204)
        self.finish()


def embed_routes(prefix: str) -> list[tuple[str, type]]:
    d = f"{prefix}api/dashboards/{NAME}/{NAME}"
    return [
        (d + "/embeds", EmbedsHandler),
        (d + r"/embeds/([0-9]{1,12})", EmbedRevokeHandler),
        (f"{prefix}api/embed-origins/{NAME}/{NAME}", EmbedOriginsHandler),
        (f"{prefix}embed/{TOKEN}", EmbedPage),
        (f"{prefix}embed/{TOKEN}/login", EmbedLogin),
        (f"{prefix}embed/{TOKEN}/session", EmbedSession),
        (f"{prefix}embed/{TOKEN}/open", EmbedOpen),
        (f"{prefix}embed/{TOKEN}/progress", EmbedProgress),
        (f"{prefix}embed/{TOKEN}/ping", EmbedPing),
        (f"{prefix}embed/{TOKEN}/rendered", EmbedRendered),
    ]


__all__ = ["embed_routes"]
