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

import asyncio
import json
import time
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from tornado import iostream, web
from tornado.httpclient import HTTPClientError, HTTPRequest

from ..environments import build_log
from ..frameworks import PER_VIEWER
from ..launcher.grants import GRANT_HEADER_SCHEME
from .base import BaseHandler, is_bot
from .dashboards import (
    COURSE_PREFIX,
    INSTRUCTORS_SUFFIX,
    SPEC_FIELDS,
    VISIBILITIES,
    Conflict,
    NotFound,
    as_json,
    can_manage,
    can_view,
    check_course_targets,
    check_git_source,
    server_for,
)
from .dashboards import validate as validate_dashboard
from .deploy import REDEPLOY, STOPPED_BY_AUTHOR, ServerState
from .entries import EntriesHandler
from .hubapi import HubAPIError
from .lti_api import course_titles
from .store import Dashboard, utcnow
from .thumbnails import placeholder_svg
from .usage import last_stop, usage_for

NAME = r"([^/]+)"
# Seconds an open waits for a server whose app stopped answering: until it answers again
# or the hub, polling its servers (every 30 s by default), sees it stop and it is restarted.
RESTART_WAIT = 60


def shareable_groups(groups: list[str]) -> list[str]:
    """The caller's groups and, for each course they teach (``course-<id>-instructors``),
    its students' group ``course-<id>``: what the publish form offers to share with."""
    taught = {g.removesuffix(INSTRUCTORS_SUFFIX) for g in groups
              if g.startswith(COURSE_PREFIX) and g.endswith(INSTRUCTORS_SUFFIX)}
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
                    {"name": n, "display_name": policy.frameworks[n].display_name,
                     "modes": list(policy.frameworks[n].modes)}
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
        fields = validate_dashboard(data, self.ctx.policy, user["name"])
        await check_git_source(fields)
        check_course_targets(fields["share_groups"], user)
        self.ctx.policy.publishers.check(user, fields["visibility"])
        pending = await self.ctx.check_targets(fields)
        d = Dashboard(owner=user["name"], **fields)
        with self.ctx.store.session() as db:
            db.add(d)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                raise Conflict(
                    f"You already have a dashboard named {fields['slug']!r}; "
                    "choose another slug or update that one."
                ) from None
        self.set_header("Location", f"{self.ctx.prefix}api/dashboards/{d.owner}/{d.slug}")
        body = as_json(d, prefix=self.ctx.public_prefix, manage=True, status="stopped")
        body["pending_users"] = pending
        self.write_json(body, 201)


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
                check_course_targets(set(fields["share_groups"]) - set(d.share_groups or []),
                                     user)
                self.ctx.policy.publishers.check(user, fields["visibility"])
                pending = await self.ctx.check_targets(fields)
                changed = {k for k, v in fields.items() if getattr(d, k) != v}
                if "source" in changed or "source_type" in changed or "git_ref" in changed:
                    changed.add("git")
                if "mode" in changed and old_mode != fields["mode"]:
                    # every instance of the old mode stops before the mode changes
                    await deployer.stop(d, by=user["name"], reason=REDEPLOY)
                for key, value in fields.items():
                    setattr(d, key, value)
                d.updated = utcnow()
                db.commit()
            redeployed, redeploy_error = False, ""
            if changed & SPEC_FIELDS:
                try:
                    redeployed = await deployer.redeploy(d, by=user["name"])
                except HubAPIError as e:  # saved, but the new spec did not start: say why
                    redeployed, redeploy_error = True, e.message
            if changed & {"visibility", "share_users", "share_groups"}:
                await deployer.sync_shares(d)
        body = as_json(d, prefix=self.ctx.public_prefix, manage=True)
        body["pending_users"] = pending
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


class OpenMixin(BaseHandler):
    """Starting a dashboard for a viewer and following its start: the open and embed flows."""

    def check_not_bot(self) -> None:
        if is_bot(self.request.headers.get("User-Agent", "")):
            raise web.HTTPError(403, "Automated clients do not start dashboards.")

    def may_view(self, d: Dashboard) -> bool:
        """May the caller still open ``d`` (as it is now, read again under its lock)?"""
        return can_view(d, getattr(self, "_hub_auth_user_cache", None))

    async def open_for(
        self, d: Dashboard, viewer: str | None, progress_url: str, embed: bool = False
    ) -> dict[str, Any]:
        self.check_not_bot()
        deployer = self.ctx.deployer
        # shared with other opens, after any update or unpublish that came first
        async with deployer.opening(d.id) as fresh:
            if fresh.owner != d.owner or fresh.slug != d.slug or not self.may_view(fresh):
                raise NotFound(f"No dashboard {d.owner}/{d.slug} (or you may not see it).")
            d = fresh
            if d.mode == PER_VIEWER and not viewer:
                raise web.HTTPError(401, "Log in to open this dashboard.")
            try:
                state = await deployer.start_for(d, viewer)
            except HubAPIError as e:
                message = _failure({"message": e.message},
                                   viewer is not None and viewer == d.owner)
                raise web.HTTPError(502, "%s", message) from None
            deployer.record_open(d, viewer)  # a full disk does not keep anyone from viewing
        body: dict[str, Any] = {"status": state.status, "server": f"{state.owner}/{state.name}"}
        if state.ready:
            body["url"] = self.ctx.deployer.enter_url(state.owner, state.name, viewer, embed)
        else:
            body["progress_url"] = progress_url
        return body

    async def stream_progress(self, d: Dashboard, viewer: str | None, embed: bool = False) -> None:
        """The hub's progress events for this viewer's server, as server-sent events.

        The last event carries ``url`` (with a fresh grant) when the server is
        ready, or ``failed`` with a message (the hub's, with the app's log, for
        the author only).
        """
        deployer = self.ctx.deployer
        server_owner, name = deployer.locate(d, viewer)
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        author = viewer is not None and viewer == d.owner
        try:
            if not await self._follow_queue((server_owner, name), author):
                return
            state = await self._ride_out_restart(d, viewer, server_owner, name)
            server_owner, name = state.owner, state.name
            if not state.ready:
                # The hub's stream: progress while pending, or why a spawn just failed.
                async for event in deployer.hub.progress(server_owner, name):
                    if event.get("ready"):
                        break
                    if event.get("failed"):
                        await self._send({"failed": True, "message": _failure(event, author)})
                        return
                    await self._send(
                        {"progress": event.get("progress"), "message": event.get("message", "")}
                    )
                state = await deployer.state(server_owner, name)
            if state.ready:
                url = deployer.enter_url(server_owner, name, viewer, embed)
                await self._send({"progress": 100, "ready": True, "url": url,
                                  "message": "The dashboard is ready."})
            else:
                await self._send({"failed": True, "message": _failure({}, author)})
        except iostream.StreamClosedError:
            return

    async def _ride_out_restart(
        self, d: Dashboard, viewer: str | None, owner: str, name: str
    ) -> ServerState:
        """A server the hub calls ready while its app does not answer: wait until it
        answers again, or until the hub sees it stop, and then start it again."""
        deployer = self.ctx.deployer
        state = await deployer.state(owner, name)
        if state.status != "restarting":
            return state
        deadline = time.monotonic() + RESTART_WAIT
        while state.status == "restarting" and time.monotonic() < deadline:
            await self._send({"progress": 5, "message": "The dashboard stopped answering; "
                              "it is being restarted…"})
            await asyncio.sleep(1)
            state = await deployer.state(owner, name)
        if state.status == "stopped":  # the hub saw it stop: the open that waited starts it
            state = await deployer.ensure_running(d, viewer)
        return state

    async def _follow_queue(self, key: tuple[str, str], author: bool) -> bool:
        """Tell the viewer their place while the start waits for room; False if it failed."""
        queue = self.ctx.deployer.queue
        shown = None
        while (position := queue.position(key)) is not None:
            if position != shown:
                ahead = position - 1
                await self._send({"progress": 0, "queued": position, "message": (
                    "Many dashboards are starting at once; "
                    + (f"{ahead} start{'s' if ahead != 1 else ''} ahead of yours. "
                       "Yours begins as soon as the hub has room." if ahead
                       else "yours is next.")
                )})
                shown = position
            await queue.changed(timeout=15)
        failure = queue.failure(key) if shown is not None else None
        if failure:
            await self._send({"failed": True, "message": _failure({"message": failure}, author)})
            return False
        return True

    def ping(self, d: Dashboard, viewer: str | None, viewer_key: str) -> bool:
        """A phone-home ping, coalesced into hub activity; True when it counted.

        One per viewer and server per ``ping_min_interval`` counts; one sooner (a
        reload, the full window opened from the open page) is answered all the same
        and changes nothing: the viewer was just seen.
        """
        self.check_not_bot()
        owner, name = self.ctx.deployer.locate(d, viewer)
        if not self.ctx.pings.accept(viewer_key, owner, name):
            return False
        self.ctx.activity.note(owner, name)
        return True

    async def page_rendered(self, d: Dashboard, viewer: str | None) -> None:
        """A viewer's page of ``d`` has loaded: its card may be captured now, on a page
        of its own, without slowing that first viewer down."""
        self.check_not_bot()
        thumbnails = self.ctx.thumbnails
        if thumbnails.wanted(d):  # cheap checks first: most pages need no capture
            owner, name = self.ctx.deployer.locate(d, viewer)
            thumbnails.schedule_if_needed(d, await self.ctx.deployer.state(owner, name))

    async def _send(self, event: dict[str, Any]) -> None:
        self.write(f"data: {json.dumps(event)}\n\n")
        await self.flush()

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
            self.write_json({"status": state.status, "state": build["state"],
                             "message": build["message"], "log": build["log"],
                             "environment": build})
            return
        if state.status == "stopped":
            with self.ctx.store.session() as db:  # why it stopped: crashed, culled idle...
                message = last_stop(db, server_owner, name)
            self.write_json({"status": "stopped", "log": [], "message": message})
            return
        grant = self.ctx.signer.grant(server_owner, name, d.owner)
        url, headers = self.ctx.internal_server_url(server_owner, name)
        request = HTTPRequest(
            url + "_hub_viz/status", request_timeout=10,
            headers={**headers, "Authorization": f"{GRANT_HEADER_SCHEME} {grant}"},
        )
        try:
            response = await self.ctx.hub.client.fetch(request)
            status = json.loads(response.body)
        except (HTTPClientError, OSError, ValueError):
            raise web.HTTPError(502, "The dashboard's launcher did not answer.") from None
        self.write_json({"status": state.status, "state": status.get("state"),
                         "message": status.get("message", ""), "log": status.get("log", []),
                         "environment": build})

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


def _failure(event: dict[str, Any], author: bool) -> str:
    """Why a start failed: the hub's message (with the app's log) for the author only."""
    if author and event.get("message"):
        return str(event["message"])
    if author:
        return "The dashboard stopped while starting; see its logs on the manage page."
    return "The dashboard could not start. Its author can see why; try again later."


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


