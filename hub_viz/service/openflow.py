"""The open flow: starting a dashboard for a viewer and following its start.

Shared by the gallery's open API (:mod:`hub_viz.service.api`) and the embed
pages (:mod:`hub_viz.service.embed_handlers`).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tornado import iostream, web

from ..frameworks import PER_VIEWER
from .base import BaseHandler, is_bot
from .dashboards import NotFound, can_view
from .deploy import ServerState
from .hubapi import HubAPIError
from .store import Dashboard

# Seconds an open waits for a server whose app stopped answering: until it answers again
# or the hub, polling its servers (every 30 s by default), sees it stop and it is restarted.
RESTART_WAIT = 60


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
                message = failure_message(
                    {"message": e.message}, viewer is not None and viewer == d.owner
                )
                raise web.HTTPError(502, "%s", message) from None
            deployer.record_open(d, viewer)  # a full disk does not keep anyone from viewing
            await deployer.share_with_viewer(d, viewer)
        body: dict[str, Any] = {"status": state.status, "server": f"{state.owner}/{state.name}"}
        if state.ready:
            body["url"] = self.ctx.deployer.enter_url(state.owner, state.name, viewer, embed)
            dry = await self.dry_pool(d, state)
            if dry:
                body["pool"] = dry
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
                async for step in deployer.hub.progress(server_owner, name):
                    if step.get("ready"):
                        break
                    if step.get("failed"):
                        await self._send({"failed": True, "message": failure_message(step, author)})
                        return
                    await self._send(
                        {"progress": step.get("progress"), "message": step.get("message", "")}
                    )
                state = await deployer.state(server_owner, name)
            if state.ready:
                url = deployer.enter_url(server_owner, name, viewer, embed)
                event: dict[str, Any] = {
                    "progress": 100,
                    "ready": True,
                    "url": url,
                    "message": "The dashboard is ready.",
                }
                dry = await self.dry_pool(d, state)
                if dry:
                    event["pool"] = dry
                await self._send(event)
            else:
                await self._send({"failed": True, "message": failure_message({}, author)})
        except iostream.StreamClosedError:
            return

    async def dry_pool(self, d: Dashboard, state: ServerState) -> dict[str, Any] | None:
        """What the open page says when every preheated kernel is taken (Voilà's
        ``warm_kernels``): the viewer's page starts a kernel of its own, and how long
        that takes, from the app's recent kernel starts. None while one is ready."""
        framework = self.ctx.policy.frameworks.get(d.framework)
        if not d.warm_kernels or framework is None or not framework.pool_status_path:
            return None
        pool = await self.ctx.pool_status(state.owner, state.name)
        if pool is None or pool.get("ready", 1) > 0:
            return None
        return dry_pool_message(pool)

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
            await self._send(
                {
                    "progress": 5,
                    "message": "The dashboard stopped answering; it is being restarted…",
                }
            )
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
                await self._send(
                    {
                        "progress": 0,
                        "queued": position,
                        "message": (
                            "Many dashboards are starting at once; "
                            + (
                                f"{ahead} start{'s' if ahead != 1 else ''} ahead of yours. "
                                "Yours begins as soon as the hub has room."
                                if ahead
                                else "yours is next."
                            )
                        ),
                    }
                )
                shown = position
            await queue.changed(timeout=15)
        failure = queue.failure(key) if shown is not None else None
        if failure:
            await self._send(
                {"failed": True, "message": failure_message({"message": failure}, author)}
            )
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


def dry_pool_message(pool: dict[str, Any]) -> dict[str, Any]:
    """The open page's note for a viewer who finds the preheated pool empty."""
    estimate = pool.get("estimate_seconds")
    measured = bool(pool.get("measured")) and isinstance(estimate, (int, float))
    starting = pool.get("starting", 0)
    if measured and isinstance(estimate, (int, float)):
        wait = f"about {max(1, round(estimate))} s, as the latest kernels took"
    else:
        wait = "usually a few seconds"
    text = (
        "Every preheated kernel of this dashboard is taken right now, so your page "
        f"waits for a kernel that is still starting: {wait}."
    )
    if isinstance(starting, int) and starting > 0:
        text += f" {starting} {'are' if starting != 1 else 'is'} warming up."
    return {
        "dry": True,
        "estimate_seconds": estimate if measured else None,
        "starting": starting,
        "message": text,
    }


def failure_message(event: dict[str, Any], author: bool) -> str:
    """Why a start failed: the hub's message (with the app's log) for the author only."""
    if author and event.get("message"):
        return str(event["message"])
    if author:
        return "The dashboard stopped while starting; see its logs on the manage page."
    return "The dashboard could not start. Its author can see why; try again later."


__all__ = ["OpenMixin", "dry_pool_message", "failure_message"]
