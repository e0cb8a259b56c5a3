"""The service's REST API (JSON), described in ``openapi.yaml``.

``S`` is the service prefix (``/services/hub-viz/``)::

    GET    S api/info                               frameworks, modes, profiles, my groups
    GET    S api/dashboards[?q=&mine=1]             what the caller may see
    POST   S api/dashboards                         publish
    GET    S api/dashboards/<owner>/<slug>          read
    PATCH  S api/dashboards/<owner>/<slug>          update (redeploys a running shared app)
    DELETE S api/dashboards/<owner>/<slug>          unpublish: stop, remove servers, revoke shares
    POST   S api/dashboards/<owner>/<slug>/open     start if needed; where to go when ready
    GET    S api/dashboards/<owner>/<slug>/progress start-up progress (server-sent events)
    POST   S api/dashboards/<owner>/<slug>/rendered the viewer's page loaded (the card's cue)
    POST   S api/dashboards/<owner>/<slug>/stop     stop its running instances (author)
    GET    S api/dashboards/<owner>/<slug>/logs     the launcher's log tail (author)
    GET    S api/dashboards/<owner>/<slug>/usage    deployments and figures (author)
    GET    S api/dashboards/<owner>/<slug>/thumbnail  image for the card
    GET    S api/usage                              figures for every dashboard the caller owns
    GET    S api/openapi.yaml                       this API's description (public)
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from tornado import web
from tornado.httpclient import HTTPClientError, HTTPRequest

from ..environments import build_log
from ..frameworks import PER_VIEWER
from ..signing import GRANT_HEADER_SCHEME
from .base import BaseHandler
from .dashboards import (
    COURSE_PREFIX,
    INSTRUCTORS_SUFFIX,
    VISIBILITIES,
    Conflict,
    as_json,
    can_manage,
    check_course_targets,
    check_git_source,
    server_for,
)
from .dashboards import validate as validate_dashboard
from .deploy import REDEPLOY, STOPPED_BY_AUTHOR
from .entries import EntriesHandler
from .hubapi import HubAPIError
from .lti_api import course_titles
from .openflow import OpenMixin
from .prebuild import start_build
from .store import Dashboard, utcnow
from .thumbnails import placeholder_svg
from .usage import last_stop, usage_for
from .versions import (
    PUBLISH,
    RUN_FIELDS,
    UPDATE,
    add_version,
    apply_follow,
    make_current,
    pop_options,
    run_fields,
    same_source,
)

NAME = r"([^/]+)"


def shareable_groups(groups: list[str]) -> list[str]:
    """The caller's groups and, for each course they teach (``course-<id>-instructors``),
    its students' group ``course-<id>``: what the publish form offers to share with."""
    taught = {
        g.removesuffix(INSTRUCTORS_SUFFIX)
        for g in groups
        if g.startswith(COURSE_PREFIX) and g.endswith(INSTRUCTORS_SUFFIX)
    }
    return sorted(set(groups) | taught)


class InfoHandler(BaseHandler):
    async def get(self) -> None:
        user = await self.require_user()
        policy = self.ctx.policy
        limit = policy.publishers.limit_for(user)
        groups = shareable_groups(user.get("groups") or [])
        self.write_json(
            {
                "user": user["name"],
                "groups": groups,
                "group_titles": await course_titles(self.ctx.hub, groups),
                "frameworks": [
                    {
                        "name": n,
                        "display_name": policy.frameworks[n].display_name,
                        "modes": list(policy.frameworks[n].modes),
                        "embed_note": policy.frameworks[n].embed_note,
                    }
                    for n in policy.allowed_frameworks
                    if n in policy.frameworks and policy.frameworks[n].command
                ],
                "visibilities": ["private"] if limit else list(VISIBILITIES),
                "publish_limit": limit,
                "profiles": sorted(policy.profiles),
                "profile_choices": [
                    {"name": name, **profile.public()}
                    for name, profile in sorted(policy.profiles.items())
                ],
                "resource_ceiling": policy.ceiling.public(),
                "max_warm_kernels": policy.max_warm_kernels,
                "warm_pool_ceiling": policy.warm_pool_ceiling,
            }
        )


class DashboardsHandler(BaseHandler):
    async def get(self) -> None:
        user = await self.require_user()
        query = self.get_query_argument("q", "").strip()
        mine = self.get_query_argument("mine", "") in ("1", "true", "yes")
        self.write_json({"items": await self.visible_items(user, query, mine)})

    async def post(self) -> None:
        user = await self.require_user()
        data = self.body_json()
        options = pop_options(data)
        fields = validate_dashboard(data, self.ctx.policy, user["name"])
        await check_git_source(fields)
        check_course_targets(fields["share_groups"], user)
        self.ctx.policy.publishers.check(user, fields["visibility"])
        pending = await self.ctx.check_targets(fields)
        with self.ctx.store.session() as db:
            if self.ctx.store.find(db, user["name"], fields["slug"]):
                raise self.taken(fields["slug"])
        # version 1: the git ref's commit, or a copy of the files, as they are now
        pins = await self.ctx.sources.pin(user["name"], fields["slug"], fields)
        d = Dashboard(owner=user["name"], **fields)
        apply_follow(d, options, fields)
        with self.ctx.store.session() as db:
            db.add(d)
            try:
                db.flush()
                v = add_version(db, d, run_fields(fields), pins, by=user["name"], origin=PUBLISH)
                make_current(d, v)
                db.commit()
            except IntegrityError:
                db.rollback()
                raise self.taken(fields["slug"]) from None
        await start_build(self.ctx.policy, d)  # its author reads the build's log at once
        self.set_header("Location", f"{self.ctx.prefix}api/dashboards/{d.owner}/{d.slug}")
        body = as_json(d, prefix=self.ctx.public_prefix, manage=True, status="stopped")
        body["pending_users"] = pending
        self.write_json(body, 201)

    @staticmethod
    def taken(slug: str) -> Conflict:
        return Conflict(
            f"You already have a dashboard named {slug!r}; choose another slug or update that one."
        )


class DashboardHandler(BaseHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        status = (await self.ctx.statuses([d], user["name"])).get(d.id)
        manage = can_manage(d, user)
        body = as_json(d, prefix=self.ctx.public_prefix, manage=manage, status=status)
        if manage:
            body["pending_users"] = await self.ctx.deployer.pending_users(d.share_users or [])
        self.write_json(body)

    async def patch(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        data = self.body_json()
        options = pop_options(data)
        with self.ctx.store.session() as db:
            found = self.find_managed(db, owner, slug, user)
        deployer = self.ctx.deployer
        # alone on this dashboard: opens wait, then see the new spec or mode
        async with deployer.changing(found.id):
            with self.ctx.store.session() as db:
                d = self.find_managed(db, owner, slug, user)
                old_mode = d.mode
                fields = validate_dashboard(data, self.ctx.policy, d.owner, current=d)
                await check_git_source(fields, d)
                check_course_targets(set(fields["share_groups"]) - set(d.share_groups or []), user)
                self.ctx.policy.publishers.check(user, fields["visibility"])
                pending = await self.ctx.check_targets(fields)
                changed = {k for k, v in fields.items() if getattr(d, k) != v}
                if "source" in changed or "source_type" in changed or "git_ref" in changed:
                    changed.add("git")
                # a new version when what runs changes, or the author asks for one (the
                # files or the branch as they are now); current unless asked otherwise.
                # Nothing is written before the stop below: the store stays free for
                # the records the stop writes.
                spec, pins = None, None
                if changed & set(RUN_FIELDS) or options.get("new_version"):
                    spec = run_fields(fields)
                    pins = await self.ctx.sources.pin(d.owner, d.slug, fields)
                    if same_source(d, spec, pins):
                        spec = None
                current = spec is not None and options.get("make_current", True)
                if current and old_mode != fields["mode"]:
                    # every instance of the old mode stops before the mode changes
                    await deployer.stop(d, by=user["name"], reason=REDEPLOY)
                apply_follow(d, options, fields)
                version = None
                if spec is not None and pins is not None:
                    version = add_version(db, d, spec, pins, by=user["name"], origin=UPDATE)
                for key, value in fields.items():
                    if key not in RUN_FIELDS:
                        setattr(d, key, value)
                if current and version is not None:  # a spec always comes with its pins
                    make_current(d, version)
                d.updated = utcnow()
                db.commit()
                new_number = version.number if version is not None else None
            redeployed, redeploy_error = False, ""
            if current:
                try:
                    redeployed = await deployer.redeploy(d, by=user["name"])
                except HubAPIError as e:  # saved, but the new spec did not start: say why
                    redeployed, redeploy_error = True, e.message
            if changed & {"visibility", "share_users", "share_groups"}:
                await deployer.sync_shares(d)
        await start_build(self.ctx.policy, d)  # changed requirements build before a start
        body = as_json(d, prefix=self.ctx.public_prefix, manage=True)
        body["pending_users"] = pending
        body["new_version"] = new_number
        body["redeployed"] = redeployed
        if redeploy_error:
            body["redeploy_error"] = redeploy_error
        self.write_json(body)

    async def delete(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            found = self.find_managed(db, owner, slug, user)
        # alone on this dashboard: opens under way finish first, later ones find it gone
        async with self.ctx.deployer.changing(found.id) as d:
            await self.ctx.deployer.unpublish(d, by=user["name"])
            with self.ctx.store.session() as db:
                db.delete(db.merge(d))
                db.commit()
        self.set_status(204)
        self.finish()


class OpenHandler(OpenMixin):
    """Start (if needed) the server that serves this dashboard to the caller."""

    async def post(self, owner: str, slug: str) -> None:
        user = await self.current()
        viewer = user["name"] if user else None
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        progress = f"{self.ctx.public_prefix}api/dashboards/{owner}/{slug}/progress"
        self.write_json(await self.open_for(d, viewer, progress))


class ProgressHandler(OpenMixin):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.current()
        viewer = user["name"] if user else None
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        await self.stream_progress(d, viewer)


class PingHandler(OpenMixin):
    """Phone-home from the open page while it is visible and focused."""

    async def post(self, owner: str, slug: str) -> None:
        user = await self.current()
        viewer = user["name"] if user else None
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        self.ping(d, viewer, viewer or f"ip:{self.request.remote_ip}")
        self.set_status(204)
        self.finish()


class RenderedHandler(OpenMixin):
    """The open page's word that the dashboard's page loaded in its frame."""

    async def post(self, owner: str, slug: str) -> None:
        user = await self.current()
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        await self.page_rendered(d, user["name"] if user else None)
        self.set_status(204)
        self.finish()


class StopHandler(BaseHandler):
    async def post(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            found = self.find_managed(db, owner, slug, user)
        async with self.ctx.deployer.changing(found.id) as d:  # no open restarts it meanwhile
            count = await self.ctx.deployer.stop(d, by=user["name"], reason=STOPPED_BY_AUTHOR)
        self.write_json({"stopped": count})


class LogsHandler(BaseHandler):
    """The launcher's start-up state and log tail of the author's shared instance."""

    async def get(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
        server_owner, name = server_for(d, user["name"] if d.mode == PER_VIEWER else None)
        state = await self.ctx.deployer.state(server_owner, name)
        build = self.environment_build(d)
        if build is not None and (build["state"] != "ready" or state.status == "pending"):
            # the environment's build (or why it failed) comes before any app log
            self.write_json(
                {
                    "status": state.status,
                    "state": build["state"],
                    "message": build["message"],
                    "log": build["log"],
                    "environment": build,
                }
            )
            return
        if state.status == "stopped":
            with self.ctx.store.session() as db:  # why it stopped: crashed, culled idle...
                message = last_stop(db, server_owner, name)
            self.write_json(
                {"status": "stopped", "log": [], "message": message, "environment": build}
            )
            return
        grant = self.ctx.signer.grant(server_owner, name, d.owner)
        url, headers = self.ctx.internal_server_url(server_owner, name)
        request = HTTPRequest(
            url + "_hub_viz/status",
            request_timeout=10,
            headers={**headers, "Authorization": f"{GRANT_HEADER_SCHEME} {grant}"},
        )
        try:
            response = await self.ctx.hub.client.fetch(request)
            status = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError):
            raise web.HTTPError(502, "The dashboard's launcher did not answer.") from None
        self.write_json(
            {
                "status": state.status,
                "state": status.get("state"),
                "message": status.get("message", ""),
                "log": status.get("log", []),
                "environment": build,
            }
        )

    def environment_build(self, d: Any) -> dict[str, Any] | None:
        """The dashboard's environment build as the hub recorded it (None: no build)."""
        settings = self.ctx.policy.environments
        root = settings.get("root")
        if not root or not settings.get("enabled", True):
            return None
        return build_log(str(root), d.owner, d.slug)


class UsageHandler(BaseHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.require_user()
        days = _days(self)
        with self.ctx.store.session() as db:
            d = self.find_managed(db, owner, slug, user)
            self.write_json(usage_for(db, [d], days=days, daily=True)[0])


class AllUsageHandler(BaseHandler):
    async def get(self) -> None:
        user = await self.require_user()
        days = _days(self)
        with self.ctx.store.session() as db:
            rows = db.scalars(select(Dashboard).order_by(Dashboard.slug)).all()
            rows = [d for d in rows if can_manage(d, user)]
            self.write_json({"days": days, "items": usage_for(db, rows, days=days)})


class ThumbnailHandler(BaseHandler):
    async def get(self, owner: str, slug: str) -> None:
        user = await self.current()
        with self.ctx.store.session() as db:
            d = self.find_visible(db, owner, slug, user)
        self.set_header("Cache-Control", "private, max-age=60")
        if d.thumbnail:
            self.set_header("Content-Type", "image/png")
            self.finish(d.thumbnail)
            return
        self.set_header("Content-Type", "image/svg+xml")
        self.finish(placeholder_svg(d.framework, self.ctx.policy.frameworks))


class OpenAPIHandler(BaseHandler):
    """Deliberately public: the API's description holds no data."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml")
        self.finish(resources.files("hub_viz.service").joinpath("openapi.yaml").read_bytes())


def _days(handler: BaseHandler) -> int:
    raw = handler.get_query_argument("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 366:
        raise web.HTTPError(400, "'days' must be a whole number from 1 to 366.")
    return int(raw)


def api_routes(prefix: str) -> list[tuple[str, type]]:
    d = f"{prefix}api/dashboards/{NAME}/{NAME}"
    return [
        (f"{prefix}api/info", InfoHandler),
        (f"{prefix}api/entries", EntriesHandler),
        (f"{prefix}api/dashboards", DashboardsHandler),
        (d, DashboardHandler),
        (d + "/open", OpenHandler),
        (d + "/progress", ProgressHandler),
        (d + "/ping", PingHandler),
        (d + "/rendered", RenderedHandler),
        (d + "/stop", StopHandler),
        (d + "/logs", LogsHandler),
        (d + "/usage", UsageHandler),
        (d + "/thumbnail", ThumbnailHandler),
        (f"{prefix}api/usage", AllUsageHandler),
        (f"{prefix}api/openapi.yaml", OpenAPIHandler),
    ]
