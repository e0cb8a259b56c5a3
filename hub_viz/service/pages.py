"""The service's pages: gallery, publish and edit form, manage, usage, open with progress.

Pages read and change data only through the JSON API (with the XSRF token in
a header), so the browser and the command line go through the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from tornado import web
from tornado.escape import url_escape
from tornado.httputil import url_concat

from ..frameworks import PER_VIEWER
from .base import BaseHandler, ServiceResponses
from .dashboards import PUBLIC, NotFound, as_json, can_manage, can_view
from .lti_api import course_titles
from .store import Dashboard, Deployment
from .usage import chart_svg, share_text, usage_for, when_text

NAME = r"([^/]+)"
GALLERY_TICKET = "hub-viz-gallery-login"
TICKET_DAYS = 2 / 1440  # two minutes: a hub login round trip
GALLERY_JS = (Path(__file__).parent / "static" / "gallery.js").read_text(encoding="utf-8")


class PageHandler(BaseHandler):
    json_errors = False

    def page(self, template: str, user: dict[str, Any] | None, **kwargs: Any) -> None:
        self.set_header("Cache-Control", "no-store")
        self.render(
            template,
            user=user,
            prefix=self.ctx.prefix,
            hub_base=self.ctx.hub_base_url,
            xsrf=self.xsrf_token.decode()
            if isinstance(self.xsrf_token, bytes)
            else self.xsrf_token,
            **kwargs,
        )

    async def logged_in(self) -> dict[str, Any]:
        user = await self.current()
        if user is None:
            self.redirect(self.get_login_url())
            raise web.Finish()
        return user


class GalleryPage(PageHandler):
    async def get(self) -> None:
        user = await self.logged_in()
        self.page("gallery.html", user)


class GalleryScript(BaseHandler):
    """``gallery.js``: the cards on the hub's home page.

    Loaded by a ``<script>`` tag on the hub's own home page (a no-cors
    request). Refused unless the browser says it comes from this origin or,
    on the isolated layout, from the hub's own origin (its ``Referer``): no
    other site, and no dashboard on a sibling host, can include it and read
    the list.
    """

    def from_hub_page(self) -> bool:
        site = self.request.headers.get("Sec-Fetch-Site", "same-origin")
        if site == "same-origin":
            return True
        hub_origin = self.ctx.deployer.layout.hub_origin
        if site != "same-site" or not hub_origin:
            return False
        referer = urlsplit(self.request.headers.get("Referer", ""))
        if f"{referer.scheme}://{referer.netloc}" == hub_origin:
            return True
        # back from the hub login that the first request (from the hub's page) started:
        # the ticket travelled only in redirects, out of any page script's sight
        ticket = self.get_query_argument("ticket", "")
        return (
            bool(ticket)
            and web.decode_signed_value(
                self.application.settings["cookie_secret"],
                GALLERY_TICKET,
                ticket,
                max_age_days=TICKET_DAYS,
            )
            is not None
        )

    def check_xsrf_cookie(self) -> None:
        # A <script> from the hub's page on a sibling host is a same-site no-cors GET,
        # which the hub's rules make prove an XSRF token it cannot have: the narrower
        # check above (the hub's own page, or a ticket it alone was given) stands in.
        if self.from_hub_page():
            return
        super().check_xsrf_cookie()

    async def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if not self.from_hub_page():
            self.set_status(403)
            self.finish("/* hub-viz: gallery.js is for this hub's own pages */")
            return
        user = await self.current()
        if user is None:  # log in to the service (hub OAuth), then come back here
            ticket = self.create_signed_value(GALLERY_TICKET, "1").decode()
            self.request.uri = url_concat(self.request.path, {"ticket": ticket})
            self.redirect(self.get_login_url())
            return
        items = await self.visible_items(user)
        data = {"items": items, "user": user["name"], "prefix": self.ctx.public_prefix}
        payload = json.dumps(data).replace("</", "<\\/")
        self.finish(GALLERY_JS.replace("/*HUB_VIZ_DATA*/null", payload))


class PublishPage(PageHandler):
    async def get(self) -> None:
        user = await self.logged_in()
        self.page(
            "publish.html", user, dashboard=None, limit=self.ctx.policy.publishers.limit_for(user)
        )


class ManagePage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
        data = as_json(d, prefix=self.ctx.public_prefix, manage=True)
        data["status"] = (await self.ctx.statuses([d], user["name"]))[d.id]
        data["pending_users"] = await self.ctx.deployer.pending_users(d.share_users or [])
        titles = await course_titles(self.ctx.hub, d.share_groups or [])
        data["share_group_names"] = [
            f"{titles[g]} ({g})" if g in titles else g for g in d.share_groups or []
        ]
        framework = self.ctx.policy.frameworks.get(d.framework)
        embed_note = framework.embed_note if framework is not None else ""
        self.page("manage.html", user, dashboard=data, embed_note=embed_note)


class EditPage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
        self.page(
            "publish.html",
            user,
            dashboard=as_json(d, prefix=self.ctx.public_prefix, manage=True),
            limit=self.ctx.policy.publishers.limit_for(user),
        )


class UsagePage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            usage = usage_for(db, [d], days=30, daily=True)[0]
        self.page(
            "usage.html",
            user,
            dashboard=as_json(d, prefix=self.ctx.public_prefix, manage=True),
            usage=usage,
            chart=chart_svg(usage["daily"]),
            share_text=share_text,
            when_text=when_text,
        )


class OpenPage(PageHandler):
    """The open flow's page: a progress bar; its script starts the dashboard.

    Opening is a POST from the page's script, so a GET (a crawler, a link
    preview, a HEAD request) never starts anything; the script waits until the
    page is shown. ``?chrome=0`` is the full window: the same page without the
    service's navigation bar, the dashboard's frame filling it (and pinging).
    """

    async def get(self, owner: str, slug: str) -> None:
        user = await self.current()
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
            if user is None and (d is None or d.visibility != PUBLIC):
                self.redirect(self.get_login_url())  # only public dashboards open anonymously
                return
            d = self.find_visible(db, owner, slug, user)
        full = self.get_query_argument("chrome", "1") == "0"
        self.page(
            "open_full.html" if full else "open.html",
            user,
            dashboard=as_json(d, prefix=self.ctx.public_prefix, manage=can_manage(d, user)),
            api=f"{self.ctx.prefix}api/dashboards/{url_escape(owner)}/{url_escape(slug)}",
            ping_seconds=self.ctx.ping_seconds,
            path=self.get_query_argument("path", ""),  # a page below the dashboard's prefix
        )

    def head(self, owner: str, slug: str) -> None:
        self.set_status(200)
        self.finish()


class ServerPage(PageHandler):
    """``goto/<user>/<server>``: where a dashboard server's own URL leads while it is stopped.

    The hub answers for a server that does not run (its not-running and 404
    pages send a browser here): the open page of the dashboard that server
    serves, in the full window, which starts it once shown. A server that
    serves no dashboard the viewer may see answers the same 404 as one that
    does not exist; the owner of a server the service did not start (one started
    through the hub's API) gets the hub's own start page for it.
    """

    async def get(self, user_name: str, server: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = dashboard_of_server(db, self.ctx.store, user_name, server)
            if d is None and user["name"] == user_name:
                # their own server, not one of the service's (started through the hub's
                # API): the hub's own start page, as before
                self.redirect(
                    f"{self.ctx.hub_base_url}hub/spawn/{url_escape(user_name)}/{url_escape(server)}"
                )
                return
            if d is None or not can_view(d, user):
                raise NotFound(
                    f"No dashboard at /user/{user_name}/{server}/ (or you may not see it)."
                )
            target = f"{self.ctx.public_prefix}open/{url_escape(d.owner)}/{url_escape(d.slug)}"
        self.redirect(url_concat(target, {"chrome": "0"}))


def dashboard_of_server(db: Any, store: Any, owner: str, server: str) -> Dashboard | None:
    """The dashboard that server ``owner/server`` serves: a shared dashboard's (named
    after its slug), else the one its deployments ran (a per-viewer or pool instance)."""
    d = store.find(db, owner, server)
    if d is not None and d.mode != PER_VIEWER:
        return d
    row = db.scalars(
        select(Deployment)
        .where(
            Deployment.server_owner == owner,
            Deployment.server_name == server,
            Deployment.dashboard_id.is_not(None),
        )
        .order_by(Deployment.started.desc())
        .limit(1)
    ).first()
    return row.dashboard if row is not None else None


class RobotsTxt(ServiceResponses, web.RequestHandler):
    """Deliberately public: crawlers are asked to stay out."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish("User-agent: *\nDisallow: /\n")


def page_routes(prefix: str) -> list[tuple[str, type]]:
    d = f"{NAME}/{NAME}"
    return [
        (prefix, GalleryPage),
        (prefix + "gallery.js", GalleryScript),
        (prefix + "publish", PublishPage),
        (prefix + f"d/{d}", ManagePage),
        (prefix + f"d/{d}/edit", EditPage),
        (prefix + f"d/{d}/usage", UsagePage),
        (prefix + f"open/{d}", OpenPage),
        (prefix + f"goto/{d}/?", ServerPage),
        (prefix + "robots.txt", RobotsTxt),
    ]
