"""The service's pages: gallery, publish and edit form, manage, usage, open with progress.

Pages read and change data only through the JSON API (with the XSRF token in
a header), so the browser and the command line go through the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tornado import web
from tornado.escape import url_escape

from .base import BaseHandler
from .dashboards import PUBLIC, as_json, can_manage
from .usage import chart_svg, usage_for

NAME = r"([^/]+)"
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
            xsrf=self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes)
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

    Loaded by a ``<script>`` tag on the hub's own page (a same-origin, no-cors
    request). Refused unless the browser says it comes from this origin, so no
    other site can include it and read the list.
    """

    async def get(self) -> None:
        site = self.request.headers.get("Sec-Fetch-Site", "same-origin")
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if site != "same-origin":
            self.set_status(403)
            self.finish("/* hub-viz: gallery.js is for this hub's own pages */")
            return
        user = await self.current()
        if user is None:  # log in to the service (hub OAuth), then come back here
            self.redirect(self.get_login_url())
            return
        items = await self.visible_items(user)
        data = {"items": items, "user": user["name"], "prefix": self.ctx.prefix}
        payload = json.dumps(data).replace("</", "<\\/")
        self.finish(GALLERY_JS.replace("/*HUB_VIZ_DATA*/null", payload))


class PublishPage(PageHandler):
    async def get(self) -> None:
        user = await self.logged_in()
        self.page("publish.html", user, dashboard=None,
                  limit=self.ctx.policy.publishers.limit_for(user))


class ManagePage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
        data = as_json(d, prefix=self.ctx.prefix, manage=True)
        data["status"] = (await self.ctx.statuses([d], user["name"]))[d.id]
        self.page("manage.html", user, dashboard=data)


class EditPage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
        self.page("publish.html", user, dashboard=as_json(d, prefix=self.ctx.prefix, manage=True),
                  limit=self.ctx.policy.publishers.limit_for(user))


class UsagePage(PageHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.logged_in()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            usage = usage_for(db, [d], days=30, daily=True)[0]
        self.page("usage.html", user, dashboard=as_json(d, prefix=self.ctx.prefix, manage=True),
                  usage=usage, chart=chart_svg(usage["daily"]))


class OpenPage(PageHandler):
    """The open flow's page: a progress bar; its script starts the dashboard.

    Opening is a POST from the page's script, so a GET (a crawler, a link
    preview, a HEAD request) never starts anything.
    """

    async def get(self, owner: str, slug: str) -> None:
        user = await self.current()
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
            if user is None and (d is None or d.visibility != PUBLIC):
                self.redirect(self.get_login_url())  # only public dashboards open anonymously
                return
            d = self.find_visible(db, owner, slug, user)
        self.page(
            "open.html", user,
            dashboard=as_json(d, prefix=self.ctx.prefix, manage=can_manage(d, user)),
            api=f"{self.ctx.prefix}api/dashboards/{url_escape(owner)}/{url_escape(slug)}",
            ping_seconds=self.ctx.ping_seconds,
        )

    def head(self, owner: str, slug: str) -> None:
        self.set_status(200)
        self.finish()


class RobotsTxt(web.RequestHandler):
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
        (prefix + "robots.txt", RobotsTxt),
    ]
