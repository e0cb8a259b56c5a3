"""The versions API: history, preview, make current (roll back), branch following, webhooks.

``S`` is the service prefix; every route but the webhook is the author's::

    GET    S api/dashboards/<owner>/<slug>/versions               history, newest first
    POST   S api/dashboards/<owner>/<slug>/versions/<n>/current   make it current (roll back)
    POST   S api/dashboards/<owner>/<slug>/versions/<n>/preview   start the author's preview
    DELETE S api/dashboards/<owner>/<slug>/versions/<n>/preview   stop it
    POST   S api/dashboards/<owner>/<slug>/webhook                a new webhook URL and secret
    DELETE S api/dashboards/<owner>/<slug>/webhook                remove the webhook
    POST   S hooks/git/<id>                                        a git host's push (public)
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from sqlalchemy import func, select
from tornado import web

from ..errors import HubVizError, SpecError
from ..frameworks import SHARED
from .base import BaseHandler, is_bot
from .dashboards import Conflict, Forbidden
from .deploy import REDEPLOY, STOPPED_BY_AUTHOR
from .hubapi import HubAPIError
from .prebuild import start_build
from .store import Dashboard, Deployment, Open, Version, utcnow
from .versions import (
    CHECK,
    PUSH,
    add_version,
    as_dashboard,
    find_version,
    make_current,
    preview_name,
    run_fields,
    version_json,
    versions_of,
)
from .webhooks import MAX_PAYLOAD, REFUSED, pushed_branch

log = logging.getLogger("hub_viz.service")
HOOK_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def version_usage(db: Any, d: Dashboard) -> dict[int, dict[str, int]]:
    """Opens and instance runs per version of ``d`` (previews counted apart)."""
    figures: dict[int, dict[str, int]] = {}
    for number, count in db.execute(
        select(Open.version, func.count()).where(Open.dashboard_id == d.id).group_by(Open.version)
    ).all():
        if number is not None:
            figures.setdefault(number, {"opens": 0, "runs": 0, "previews": 0})["opens"] = count
    for number, preview, count in db.execute(
        select(Deployment.version, Deployment.preview, func.count())
        .where(Deployment.dashboard_id == d.id)
        .group_by(Deployment.version, Deployment.preview)
    ).all():
        if number is not None:
            row = figures.setdefault(number, {"opens": 0, "runs": 0, "previews": 0})
            row["previews" if preview else "runs"] += count
    return figures


def note_environment(db: Any, d: Dashboard, build: dict[str, Any] | None) -> None:
    """Keep on its version the environment an instance of it prepared (the lock's digest
    and the environment's key), as the hub's build pointer says."""
    build = build or {}
    number = build.get("version")
    if not isinstance(number, int) or build.get("state") != "ready":
        return
    v = db.scalar(select(Version).where(Version.dashboard_id == d.id, Version.number == number))
    if v is None:
        return
    found = {"lock": build.get("build"), "env": build.get("env"), "source": build.get("source")}
    if dict(v.environment or {}) != found:
        v.environment = found
        db.commit()


class VersionsHandler(BaseHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            note_environment(db, d, self.environment_build(d))
            usage = version_usage(db, d)
            items = []
            for v in versions_of(db, d):
                item = version_json(v, d, prefix=self.ctx.public_prefix)
                item["usage"] = usage.get(v.number, {"opens": 0, "runs": 0, "previews": 0})
                items.append(item)
        self.write_json(
            {
                "current": d.current_version,
                "follow_branch": d.follow_branch,
                "auto_current": d.auto_current,
                "webhook": bool(d.hook_id),
                "items": items,
            }
        )

    def environment_build(self, d: Dashboard) -> dict[str, Any] | None:
        from ..environments import build_log

        settings = self.ctx.policy.environments
        root = settings.get("root")
        if not root or not settings.get("enabled", True):
            return None
        return build_log(str(root), d.owner, d.slug, lines=0)


class CurrentHandler(BaseHandler):
    """Make a version current: viewers get it; a running shared instance restarts on it."""

    async def post(self, owner: str, slug: str, number: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            found = self.find_managed(db, owner, slug, user)
            find_version(db, found, number)  # 404 before any lock
        deployer = self.ctx.deployer
        async with deployer.changing(found.id):
            with self.ctx.store.session() as db:
                d = self.find_managed(db, owner, slug, user)
                v = find_version(db, d, number)
                was = d.current_version
                if v.spec.get("mode") != d.mode:
                    await deployer.stop(d, by=user["name"], reason=REDEPLOY)
                make_current(d, v)
                d.updated = utcnow()
                db.commit()
            redeployed, error = False, ""
            if was != d.current_version:
                try:
                    redeployed = await deployer.redeploy(d, by=user["name"])
                except HubAPIError as e:
                    redeployed, error = True, e.message
        body: dict[str, Any] = {
            "current": d.current_version,
            "previous": was,
            "redeployed": redeployed,
        }
        if error:
            body["redeploy_error"] = error
        self.write_json(body)


class PreviewHandler(BaseHandler):
    """The author's own look at a version before viewers get it."""

    async def post(self, owner: str, slug: str, number: str) -> None:
        user = await self.require_user()
        if is_bot(self.request.headers.get("User-Agent", "")):
            raise web.HTTPError(403, "Automated clients do not start dashboards.")
        with self.ctx.store.session() as db:
            found = self._author_only(db, owner, slug, user)
        deployer = self.ctx.deployer
        async with deployer.opening(found.id) as d:
            with self.ctx.store.session() as db:
                v = find_version(db, d, number)
            framework = self.ctx.policy.frameworks.get(str(v.spec.get("framework") or ""))
            if framework is None or SHARED not in framework.modes:
                raise Conflict(
                    "A preview runs as one instance of your own, which this version's "
                    "framework does not offer; make it current to try it."
                )
            view = as_dashboard(d, v)
            view.mode = SHARED
            name = preview_name(d.owner, d.slug, v.number)
            with self.ctx.store.session() as db:
                if self.ctx.store.find(db, d.owner, name):
                    raise Conflict(
                        f"Your dashboard {name!r} uses the server this preview needs; "
                        "make the version current to try it."
                    )
            try:
                state = await deployer.start_preview(view, name, by=user["name"])
            except HubAPIError as e:
                raise web.HTTPError(502, "%s", e.message) from None
        body: dict[str, Any] = {"status": state.status, "server": f"{owner}/{name}"}
        if state.ready:
            # the author's own tab shows the version as its page (no open page frames a
            # preview): the grant, for the author and this server only, says so
            body["url"] = deployer.enter_url(owner, name, user["name"], page=True)
        self.write_json(body)

    async def delete(self, owner: str, slug: str, number: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self._author_only(db, owner, slug, user)
            v = find_version(db, d, number)
        stopped = await self.ctx.deployer.stop_server(
            d.owner,
            preview_name(d.owner, d.slug, v.number),
            reason=STOPPED_BY_AUTHOR,
            by=user["name"],
        )
        self.write_json({"stopped": int(stopped)})

    def _author_only(self, db: Any, owner: str, slug: str, user: dict[str, Any]) -> Dashboard:
        d = self.find_managed(db, owner, slug, user)
        if user["name"] != d.owner:
            raise Forbidden(f"Only {d.owner} previews versions of {d.ref}.")
        return d


class WebhookHandler(BaseHandler):
    """The author's webhook of a dashboard that follows a branch: shown once, replaceable."""

    async def post(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        keys = self.ctx.hooks
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            if d.source_type != "git":
                raise SpecError("Only a dashboard published from git has a push webhook.")
            d.hook_id = keys.new_id()
            d.follow_branch = True
            db.commit()
            hook_id = d.hook_id
        self.write_json(
            {
                "url": f"{self.ctx.public_prefix}hooks/git/{hook_id}",
                "secret": keys.secret(hook_id),
                "branch": d.git_ref,
                "note": "The secret is shown this once; asking again replaces it.",
            },
            201,
        )

    async def delete(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            d.hook_id = None
            db.commit()
        self.set_status(204)
        self.finish()


class GitHookHandler(BaseHandler):
    """Deliberately public: a git host's push, refused unless its signature is right.

    Every refusal reads the same whether or not the id belongs to a dashboard.
    """

    def check_xsrf_cookie(self) -> None:
        return  # no cookie counts here: the signature is the credential

    async def post(self, hook_id: str) -> None:
        body = self.request.body
        if len(body) > MAX_PAYLOAD:
            raise web.HTTPError(413, "The webhook's payload is too large.")
        d = None
        if HOOK_ID.fullmatch(hook_id):
            with self.ctx.store.session() as db:
                d = db.scalar(select(Dashboard).where(Dashboard.hook_id == hook_id))
        ok = self.ctx.hooks.verify(hook_id, body, self.request.headers)
        if d is None or not ok:
            raise web.HTTPError(401, REFUSED)
        event = pushed_branch(self.request.headers, body)
        if event is None:
            raise web.HTTPError(
                400, "Only push events are taken (and ping); send push events as JSON."
            )
        kind, branch = event
        if kind == "ping":
            self.write_json({"ok": True})
            return
        if branch != d.git_ref or not d.follow_branch or d.source_type != "git":
            self.write_json({"ok": True, "version": None, "note": "not the followed branch"})
            return
        v = await self.ctx.follower.check(d.id, origin=PUSH)
        self.write_json(
            {"ok": True, "version": v, "note": "new version" if v else "no new commit"},
            201 if v else 200,
        )


class Follower:
    """Makes a version of each new commit on the branch a dashboard follows."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._busy: dict[int, asyncio.Lock] = {}

    async def check(self, dashboard_id: int, *, origin: str = CHECK) -> int | None:
        """A new version if the branch moved (current when the author chose so); its number."""
        lock = self._busy.setdefault(dashboard_id, asyncio.Lock())
        async with lock:  # one check per dashboard at a time: no two versions of one commit
            with self.ctx.store.session() as db:
                d = db.get(Dashboard, dashboard_id)
                if d is None or d.source_type != "git" or not d.follow_branch:
                    return None
                newest = versions_of(db, d)
                spec = dict(newest[0].spec) if newest else run_fields(d)
                last_commit = newest[0].commit if newest else d.commit
            if spec.get("source_type") != "git":
                return None
            pins = await self.ctx.sources.pin(d.owner, d.slug, spec)
            with self.ctx.store.session() as db:
                d = db.get(Dashboard, dashboard_id)
                if d is None:
                    return None
                d.checked = utcnow()
                if pins["commit"] == last_commit:
                    db.commit()
                    return None
                v = add_version(db, d, spec, pins, by="", origin=origin)
                number, auto = v.number, d.auto_current
                db.commit()
                view = as_dashboard(d, v)
            log.info("%s/%s: version %s from commit %s", d.owner, d.slug, number, pins["commit"])
            # its environment builds now: a preview, or the switch to it, waits for none
            await start_build(self.ctx.policy, view)
            if auto:
                await self.make_current(dashboard_id, number)
            return number

    async def make_current(self, dashboard_id: int, number: int) -> None:
        deployer = self.ctx.deployer
        async with deployer.changing(dashboard_id):
            with self.ctx.store.session() as db:
                d = db.get(Dashboard, dashboard_id)
                if d is None:
                    return
                v = find_version(db, d, number)
                if v.spec.get("mode") != d.mode:
                    await deployer.stop(d, by="", reason=REDEPLOY)
                make_current(d, v)
                d.updated = utcnow()
                db.commit()
            try:
                await deployer.redeploy(d, by=d.owner)
            except HubAPIError as e:
                log.warning("%s: the new version did not start: %s", d.ref, e.message)

    async def run_forever(self, interval: float) -> None:
        """Check every followed branch each ``interval`` seconds (pushes come sooner)."""
        while True:
            await asyncio.sleep(interval)
            with self.ctx.store.session() as db:
                ids = db.scalars(
                    select(Dashboard.id).where(
                        Dashboard.follow_branch.is_(True), Dashboard.source_type == "git"
                    )
                ).all()
            for dashboard_id in ids:
                try:
                    await self.check(dashboard_id)
                except HubVizError as e:
                    log.warning("Checking the branch of dashboard %s: %s", dashboard_id, e.message)
                except Exception:
                    log.exception("Checking the branch of dashboard %s failed", dashboard_id)


def versions_routes(prefix: str, name: str) -> list[tuple[str, type]]:
    d = f"{prefix}api/dashboards/{name}/{name}"
    return [
        (d + "/versions", VersionsHandler),
        (d + r"/versions/([^/]+)/current", CurrentHandler),
        (d + r"/versions/([^/]+)/preview", PreviewHandler),
        (d + "/webhook", WebhookHandler),
        (prefix + r"hooks/git/([^/]+)", GitHookHandler),
    ]
