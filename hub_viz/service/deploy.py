"""Running dashboards: start the right server as the right user, share, stop, record.

Every change to a server goes through the hub's REST API; every start and
stop is written to the store as a :class:`~hub_viz.service.store.Deployment`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..frameworks import PER_VIEWER
from ..layout import Layout
from ..signing import Signer
from .classwave import warm_burst
from .dashboards import GROUPS, USERS, Conflict, NotFound, server_for
from .hubapi import HubAPIError, HubClient
from .locks import Locks
from .startqueue import StartQueue
from .store import Dashboard, Deployment, Open, Store, store_failure, utcnow

log = logging.getLogger("hub_viz.service")

STOPPED_BY_AUTHOR = "stopped by author"
REDEPLOY = "redeploy"
NEW_VERSION = "new version"  # a viewer's instance of an older version, reopened
UNPUBLISHED = "unpublished"
# Servers that ended on their own: the hub's spawner reports it (POST api/servers/ended)
CRASHED = "crashed"  # the app or its launcher exited (or was killed) without being asked to
EXITED = "exited"  # the launcher exited cleanly without being asked to stop
FAILED_START = "failed to start"  # stopped before the service ever saw it ready
# Servers the hub stopped on request of someone else than the service, told apart by the
# hub's last activity: the idle culler stops only servers idle for its timeout.
CULLED = "culled idle"
STOPPED_ON_HUB = "stopped on the hub"  # by an admin, or its owner on the hub's home page
STOPPED = "stopped"  # stopped while the service was not watching (e.g. a hub restart)
GONE = "This dashboard was unpublished; find it again in the gallery."
# A server the hub called ready this recently is taken as ready without asking again:
# a class opening one dashboard at once asks the hub once, not once per student.
READY_SECONDS = 2.0
# A start under way holds its place under max_starting this long at most (the service's
# max_starting_seconds): an app slow to become ready, or one that never does, then no
# longer holds back other starts, nor does a hub that never says how a start ended.
START_PLACE_SECONDS = 30.0
IN_FLIGHT_CHECK = 1.0  # seconds between questions about a start nobody follows


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time from the hub (``...Z``) as an aware UTC datetime; None if absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def vanished_reason(
    last_activity: dt.datetime | None, now: dt.datetime, cull_timeout: float
) -> str:
    """Why a server the hub stopped without the service asking (and without a crash
    report from the hub's spawner, see :meth:`Deployer.server_ended`) is gone.

    "culled idle" when its last activity is at least the culler's timeout ago
    (less a tenth, at most a minute, for clocks that disagree): only then can the
    culler have stopped it; otherwise someone stopped it on the hub ("stopped on
    the hub"); "stopped" when the service never saw it run.
    """
    if last_activity is None:
        return STOPPED
    idle = (now - last_activity).total_seconds()
    if cull_timeout > 0 and idle >= cull_timeout - min(60.0, cull_timeout / 10):
        return CULLED
    return STOPPED_ON_HUB


@dataclass
class ServerState:
    owner: str
    name: str
    # "ready", "pending", "queued", "stopping", "stopped", or "restarting": the hub
    # calls it ready but its app does not answer (it died, the hub has not seen it yet)
    status: str

    @property
    def ready(self) -> bool:
        return self.status == "ready"


def spawn_spec(d: Dashboard, service_prefix: str) -> dict[str, Any]:
    """What the spawner gets for ``d`` (signed for one server by the caller)."""
    spec: dict[str, Any] = {
        "framework": d.framework,
        "entry": d.entry,
        "mode": d.mode,
        "title": d.title,
        "source_owner": d.owner,
        "open_url": f"{service_prefix}open/{d.owner}/{d.slug}",
        "dashboard": d.ref,
    }
    if d.args:
        spec["args"] = list(d.args)
    if d.source_type == "git":
        # a version's pinned commit (fetched by its SHA), else the ref as it is at start
        spec["git"] = {"url": d.source, "ref": d.commit or d.git_ref}
    if d.snapshot:  # the version's copy of the author's files: the entry's folder
        spec["snapshot"] = d.snapshot
        spec["entry"] = PurePosixPath(d.entry).name
    if d.current_version:
        spec["version"] = d.current_version
    if d.profile:
        spec["profile"] = d.profile
    if d.resources:
        spec["resources"] = dict(d.resources)
    if d.warm_kernels:
        spec["warm_kernels"] = d.warm_kernels
    return spec


class Deployer:
    """Starts, shares and stops dashboard servers through the hub API."""

    def __init__(
        self,
        hub: HubClient,
        store: Store,
        signer: Signer,
        *,
        layout: Layout,
        service_prefix: str,
        cull_timeout: float = 0,
    ) -> None:
        self.hub = hub
        self.store = store
        self.signer = signer
        self.layout = layout
        self.service_prefix = service_prefix
        self.cull_timeout = cull_timeout  # the idle culler's, to name stop reasons (0: none)
        self.max_warm_kernels = 100  # the hub's DashboardSettings.max_warm_kernels
        # per dashboard (opens shared, changes alone), per server, per viewer of a dashboard
        self.locks = Locks()
        # starts under way at once that viewers' opens may add (0: no limit of the
        # service's own; the hub's concurrent_spawn_limit still applies)
        self.max_starting = 0
        self.start_place_seconds = START_PLACE_SECONDS
        # servers whose start was sent to the hub and that are not ready yet, since when
        self._in_flight: dict[tuple[str, str], float] = {}
        self._in_flight_watch: asyncio.Task[None] | None = None
        self.queue = StartQueue(room=self.has_room)
        self.pool: Any = None  # a WarmPool when per-viewer warm pools are on
        # the newest last_activity the hub reported per running server
        self._last_activity: dict[tuple[str, str], dt.datetime] = {}
        # servers of the current runs that the service has seen ready
        self._ready_seen: set[tuple[str, str]] = set()
        self._ready_at: dict[tuple[str, str], float] = {}  # when the hub last said ready
        # when the hub's spawner last said a server is being stopped
        self._stop_noted: dict[tuple[str, str], float] = {}
        # asks a server's launcher whether its app answers (set by the service)
        self.answers: Callable[[str, str], Awaitable[bool]] | None = None
        # servers whose start is recorded and on its way to the hub (not listed yet)
        self._starting: set[tuple[str, str]] = set()
        # (dashboard, viewer) pairs whose hub share this service made or found
        self._viewer_shares: set[tuple[int, str]] = set()

    # -- urls and specs -----------------------------------------------------

    def server_url(self, owner: str, name: str) -> str:
        """A server's public URL (absolute on the isolated layout)."""
        return self.layout.server_url(owner, name)

    def enter_url(
        self, owner: str, name: str, viewer: str | None, embed: bool = False, page: bool = False
    ) -> str:
        """Where a viewer goes once the server is ready: the launcher, with a one-time grant
        (``page``: the card capture's, served the dashboard as a tab's page)."""
        grant = self.signer.grant(owner, name, viewer, embed=embed, page=page)
        return f"{self.server_url(owner, name)}_hub_viz/enter?grant_token={grant}"

    def spawn_spec(self, d: Dashboard) -> dict[str, Any]:
        spec = spawn_spec(d, self.layout.service_origin + self.service_prefix)
        burst = warm_burst(d, self.store, self.max_warm_kernels)  # inside a keep-warm window
        if burst:
            spec["warm_burst"] = burst
        return spec

    def spawn_options(self, d: Dashboard, owner: str, name: str) -> dict[str, Any]:
        spec = self.spawn_spec(d)
        return {"hub_viz_spec": self.signer.sign_spec(owner, name, spec)}

    # -- state --------------------------------------------------------------

    async def state(self, owner: str, name: str) -> ServerState:
        asked = time.monotonic()
        model = await self.hub.server(owner, name)
        if (not model or model.get("pending") != "spawn") and (owner, name) not in self._starting:
            self._start_ended(owner, name)  # (one still on its way to the hub is not over)
        if not model:
            return ServerState(owner, name, "stopped")
        if model.get("ready"):
            if (
                self.answers is not None
                and not self._recently_ready(owner, name)
                and not await self.answers(owner, name)
            ):
                self._ready_at.pop((owner, name), None)
                return ServerState(owner, name, "restarting")
            self._ready_seen.add((owner, name))
            if asked > self._stop_noted.get((owner, name), -math.inf):
                # an answer the hub gave before a stop began is not kept for later opens
                self._ready_at[(owner, name)] = time.monotonic()
            return ServerState(owner, name, "ready")
        self._ready_at.pop((owner, name), None)
        if model.get("pending") == "spawn":
            return ServerState(owner, name, "pending")
        if model.get("pending") == "stop":
            return ServerState(owner, name, "stopping")
        return ServerState(owner, name, "stopped")

    # -- starts under way ------------------------------------------------------

    def has_room(self) -> bool:
        """May one more start go now under :attr:`max_starting`? (A start the hub has not
        finished after :attr:`start_place_seconds` no longer counts.)"""
        if self.max_starting <= 0:
            return True
        stale = time.monotonic() - self.start_place_seconds
        for key in [k for k, since in self._in_flight.items() if since < stale]:
            del self._in_flight[key]
        # a queued start the queue has sent counts before the hub has it
        return len(self._in_flight.keys() | self.queue.sent) < self.max_starting

    def _start_began(self, owner: str, name: str) -> None:
        self._in_flight[(owner, name)] = time.monotonic()
        if self.max_starting > 0 and (
            self._in_flight_watch is None or self._in_flight_watch.done()
        ):
            self._in_flight_watch = asyncio.ensure_future(self._watch_in_flight())

    def _start_ended(self, owner: str, name: str) -> None:
        if self._in_flight.pop((owner, name), None) is not None:
            self.queue.wake()

    async def _watch_in_flight(self) -> None:
        """Ask the hub about starts under way that nobody follows (a viewer who closed the
        open page), so that their room is given back once they are ready or failed."""
        while self._in_flight:
            await asyncio.sleep(IN_FLIGHT_CHECK)
            for owner, name in list(self._in_flight):
                try:
                    await self.state(owner, name)
                except Exception as e:  # the hub is restarting: ask again next round
                    log.debug("Could not ask the hub about %s/%s: %s", owner, name, e)

    # -- the dashboard's lock -------------------------------------------------

    @asynccontextmanager
    async def opening(self, dashboard_id: int) -> AsyncIterator[Dashboard]:
        """Hold the dashboard's lock shared (opens do not wait for one another) and read
        it again: an unpublish or a mode change that went first is seen (404 if gone)."""
        async with self.locks.dashboard(dashboard_id).shared():
            yield self._reread(dashboard_id)

    @asynccontextmanager
    async def changing(self, dashboard_id: int) -> AsyncIterator[Dashboard]:
        """Hold the dashboard's lock alone (an update, a mode change, an unpublish): the
        opens under way finish first, the opens that come later read the result."""
        async with self.locks.dashboard(dashboard_id).exclusive():
            yield self._reread(dashboard_id)

    def _reread(self, dashboard_id: int) -> Dashboard:
        with self.store.session() as db:
            d = db.get(Dashboard, dashboard_id)
        if d is None:
            raise NotFound(GONE)
        return d

    # -- open -----------------------------------------------------------------

    def locate(self, d: Dashboard, viewer: str | None) -> tuple[str, str]:
        """(owner, server name) serving ``d`` to ``viewer``: a warm-pool claim, else the usual."""
        if d.mode == PER_VIEWER and viewer and self.pool is not None:
            name = self.pool.claimed(d, viewer)
            if name:
                return self.pool.user, name
        return server_for(d, viewer)

    async def ensure_running(self, d: Dashboard, viewer: str | None) -> ServerState:
        """Start ``d``'s server for ``viewer`` unless it runs or starts already.

        Takes the dashboard's lock (see :meth:`opening`) and works on the dashboard
        as it is then; :meth:`start_for` is the same for a caller that holds it.
        """
        async with self.opening(d.id) as fresh:
            return await self.start_for(fresh, viewer)

    async def start_for(self, d: Dashboard, viewer: str | None) -> ServerState:
        """:meth:`ensure_running` for a caller holding ``d``'s lock.

        One lock per server: concurrent opens of a stopped dashboard start it once;
        one lock per viewer of a per-viewer dashboard: a viewer's concurrent opens
        get one instance (and the store refuses a second open run for them). A
        per-viewer dashboard with a warm pool hands the viewer a ready instance
        (theirs from then on) before it starts one of its own. When the hub is at
        its limit of starts at once, the start waits in :attr:`queue` (status "queued").
        """
        if d.mode == PER_VIEWER and viewer:
            async with self.locks.one(("viewer", d.id, viewer)):
                if self.pool is not None:
                    state = await self._from_pool(d, viewer)
                    if state is not None:
                        return state
                return await self._start_own(d, viewer)
        return await self._start_own(d, viewer)

    async def _start_own(self, d: Dashboard, viewer: str | None) -> ServerState:
        owner, name = server_for(d, viewer)
        # a viewer's own instance of an older version restarts on the current one
        # (the caller holds the viewer's lock: their other opens wait for this one)
        if d.mode == PER_VIEWER and viewer and self._outdated(d, owner, name):
            if (await self.state(owner, name)).status == "ready":
                log.info("%s/%s runs an older version of %s: restarting it", owner, name, d.ref)
                await self.stop_server(owner, name, reason=NEW_VERSION, by=viewer)
        if self._recently_ready(owner, name):
            return ServerState(owner, name, "ready")
        async with self.locks.one(("server", owner, name)):
            if self._recently_ready(owner, name):  # another open asked while this one waited
                return ServerState(owner, name, "ready")
            if self.queue.position((owner, name)) is not None:
                return ServerState(owner, name, "queued")
            state = await self.state(owner, name)
            for _ in range(150):  # a server still stopping: wait for it (at most ~30 s)
                if state.status != "stopping":
                    break
                await asyncio.sleep(0.2)
                state = await self.state(owner, name)
            if state.status in ("ready", "pending", "restarting"):
                return state
            by = viewer or ""
            per_viewer = viewer if d.mode == PER_VIEWER else None
            dashboard_id = d.id

            def queued() -> ServerState:
                self.queue.add(
                    (owner, name),
                    lambda: self._queued_start(dashboard_id, owner, name, by, per_viewer),
                )
                return ServerState(owner, name, "queued")

            if len(self.queue) or not self.has_room():  # behind the starts already waiting
                return queued()
            try:
                code = await self.start_server(d, owner, name, by=by, viewer=per_viewer)
            except HubAPIError as e:
                if e.status != 429:
                    raise
                return queued()
            if code == 201:
                # the hub also answers 201 when a start failed just as its slow_spawn_timeout
                # ran out: only its own model says the server really runs
                return await self.state(owner, name)
            return ServerState(owner, name, "pending")

    async def _queued_start(
        self, dashboard_id: int, owner: str, name: str, by: str, viewer: str | None
    ) -> int:
        """A start that waited for room: under the dashboard's lock, if it still exists."""
        async with self.opening(dashboard_id) as d:
            return await self.start_server(d, owner, name, by=by, viewer=viewer)

    def _outdated(self, d: Dashboard, owner: str, name: str) -> bool:
        """Does ``owner/name``'s open run serve a version of ``d`` other than its current
        one? (A per-viewer instance started before the author made another current.)"""
        if not isinstance(d.current_version, int):
            return False
        with self.store.session() as db:
            running = db.scalar(
                select(Deployment.version).where(
                    Deployment.server_owner == owner,
                    Deployment.server_name == name,
                    Deployment.stopped.is_(None),
                    Deployment.preview.is_(False),
                )
            )
        return isinstance(running, int) and running != d.current_version

    def _recently_ready(self, owner: str, name: str) -> bool:
        seen = self._ready_at.get((owner, name))
        return seen is not None and time.monotonic() - seen < READY_SECONDS

    async def _from_pool(self, d: Dashboard, viewer: str) -> ServerState | None:
        """The viewer's warm-pool instance (kept or newly claimed), if it can serve them."""
        assert self.pool is not None
        name = self.pool.claimed(d, viewer)
        if name:
            state = await self.state(self.pool.user, name)
            if state.status in ("ready", "pending") and not self._outdated(d, self.pool.user, name):
                return state
            # it stopped (culled), or runs an older version: removed, never handed on
            await self.pool.hand_back(name)
        if not d.warm_pool:  # nothing to claim: the viewer's own start looks at their server
            return None
        own = server_for(d, viewer)
        state = await self.state(*own)
        if state.status in ("ready", "pending"):
            return state
        name = await self.pool.claim(d, viewer)
        return ServerState(self.pool.user, name, "ready") if name else None

    async def start_server(
        self,
        d: Dashboard,
        owner: str,
        name: str,
        *,
        by: str,
        viewer: str | None = None,
        preview: bool = False,
    ) -> int:
        """Record the run of ``owner/name`` for ``d`` (serving ``viewer``), then ask the hub
        to start it with ``d``'s spec; a start the hub refuses leaves no record.

        The record comes first: a store that cannot write (a full disk) starts nothing.
        """
        try:
            record = self._record_start(d, owner, name, by, viewer, preview)
        except SQLAlchemyError as e:
            failure = store_failure(e, self.store.url)
            log.error("Not starting %s/%s for %s: %s", owner, name, d.ref, failure.log_message)
            failure.message = (
                "This dashboard is not running, and the hub cannot record a new "
                "start right now: "
                + (
                    "its state disk is full"
                    if failure.status_code == 507
                    else "its database is unavailable"
                )
                + ". Tell your operator."
            )
            raise failure from None
        self._starting.add((owner, name))
        # counts against max_starting from now (the hub's answer may take its
        # slow_spawn_timeout) until the server is ready or the start failed
        self._start_began(owner, name)
        try:
            code = await self.hub.start(owner, name, self.spawn_options(d, owner, name))
        except BaseException as e:
            self._start_ended(owner, name)
            if isinstance(e, HubAPIError):
                self._forget(record)  # the hub answered and did not start it
            raise
        finally:
            self._starting.discard((owner, name))
        if code != 202:  # ready already (201): not under way any more
            self._start_ended(owner, name)
        if d.mode != PER_VIEWER and not preview:  # a preview is the author's alone
            await self.sync_shares(d)
        return code

    async def start_preview(self, view: Dashboard, name: str, *, by: str) -> ServerState:
        """Start (unless it runs) the author's server ``name`` running ``view``, a version
        of a dashboard that is not (or not yet) current. Never shared: only its author
        gets grants to it (:meth:`enter_url`), through the same launcher as every
        dashboard. The caller holds the dashboard's lock."""
        owner = view.owner
        async with self.locks.one(("server", owner, name)):
            state = await self.state(owner, name)
            if state.status in ("ready", "pending", "restarting"):
                return state
            code = await self.start_server(view, owner, name, by=by, preview=True)
            if code == 201:
                return await self.state(owner, name)
            return ServerState(owner, name, "pending")

    async def stop_server(
        self, owner: str, name: str, *, reason: str, by: str = "", remove: bool = False
    ) -> bool:
        """Close the server's open records, then stop it (and delete it with ``remove``).

        The records are written first; if the hub then refuses, they are opened
        again. Returns whether it was running.
        """
        async with self.locks.one(("server", owner, name)):
            state = await self.state(owner, name)
            running = state.status != "stopped"
            if running:
                closed = self._close_records(owner, name, reason, by)
            else:  # it had ended already, unnoticed: its record says how
                now = dt.datetime.now(dt.timezone.utc)
                closed = self._close_records(owner, name, self._vanished(owner, name, now), "")
            if running or remove:
                try:
                    await self.hub.stop(owner, name, remove=remove)
                except HubAPIError:
                    self._reopen(closed)
                    raise
            self._last_activity.pop((owner, name), None)
            self._ready_at.pop((owner, name), None)
            return running

    async def remove_server(self, owner: str, name: str, *, reason: str, by: str = "") -> None:
        """Stop and delete a server and close its records (a warm-pool instance done with)."""
        await self.stop_server(owner, name, reason=reason, by=by, remove=True)

    def record_open(self, d: Dashboard, viewer: str | None) -> None:
        """Count an open for the usage figures; never fails the open (a full disk is logged)."""
        try:
            with self.store.session() as db:
                db.add(
                    Open(
                        dashboard_id=d.id,
                        dashboard_ref=d.ref,
                        viewer=viewer or "",
                        version=d.current_version,
                    )
                )
                db.commit()
        except SQLAlchemyError as e:
            log.error(
                "An open of %s was not counted: %s",
                d.ref,
                store_failure(e, self.store.url).log_message,
            )

    def _record_start(
        self,
        d: Dashboard,
        owner: str,
        name: str,
        by: str,
        viewer: str | None = None,
        preview: bool = False,
    ) -> int:
        """Write the new run (closing one still open on this server); its id."""
        now = dt.datetime.now(dt.timezone.utc)
        # a run still open here stopped without us, and no reconcile noticed yet
        reason = self._vanished(owner, name, now)
        with self.store.session() as db:
            self._close_open_deployments(db, owner, name, reason, "")
            row = Deployment(
                dashboard_id=d.id,
                dashboard_ref=d.ref,
                server_owner=owner,
                server_name=name,
                started_by=by,
                viewer=viewer,
                version=d.current_version,
                preview=preview,
            )
            db.add(row)
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                raise Conflict(
                    "Another instance of this dashboard is already starting for you; "
                    "reload the page in a moment."
                ) from None
            row_id = row.id
        self._last_activity[(owner, name)] = now  # the hub stamps a start as activity
        self._ready_seen.discard((owner, name))
        return row_id

    def _forget(self, record: int) -> None:
        try:
            with self.store.session() as db:
                row = db.get(Deployment, record)
                if row is not None:
                    db.delete(row)
                    db.commit()
        except SQLAlchemyError as e:  # reconcile closes it: the server never ran
            log.error(
                "A refused start stays recorded until the next check: %s",
                store_failure(e, self.store.url).log_message,
            )

    def _close_records(self, owner: str, name: str, reason: str, by: str) -> list[int]:
        with self.store.session() as db:
            closed = self._close_open_deployments(db, owner, name, reason, by)
            db.commit()
        return closed

    def _reopen(self, records: list[int]) -> None:
        """The hub refused a stop: the runs closed for it go on."""
        if not records:
            return
        with self.store.session() as db:
            db.execute(
                update(Deployment)
                .where(Deployment.id.in_(records))
                .values(stopped=None, stop_reason="", stopped_by="")
            )
            db.commit()

    @staticmethod
    def _close_open_deployments(db: Any, owner: str, name: str, reason: str, by: str) -> list[int]:
        rows = db.scalars(
            select(Deployment).where(
                Deployment.server_owner == owner,
                Deployment.server_name == name,
                Deployment.stopped.is_(None),
            )
        ).all()
        for row in rows:
            row.stopped = utcnow()
            row.stop_reason = reason
            row.stopped_by = by
        return [row.id for row in rows]

    # -- stop, redeploy, delete ----------------------------------------------

    def servers_of(self, d: Dashboard, *, every: bool = False) -> list[tuple[str, str]]:
        """The servers of ``d`` with an open run, whatever its mode now (with ``every``,
        each server it ever ran on), and the shared one of a shared dashboard."""
        query = select(Deployment.server_owner, Deployment.server_name).where(
            Deployment.dashboard_id == d.id
        )
        if not every:
            query = query.where(Deployment.stopped.is_(None))
        with self.store.session() as db:
            found = {(r[0], r[1]) for r in db.execute(query.distinct()).all()}
        if d.mode != PER_VIEWER:
            found.add((d.owner, d.slug))
        return sorted(found)

    async def stop(self, d: Dashboard, *, by: str, reason: str, remove: bool = False) -> int:
        """Stop every running server of ``d``; returns how many were asked to stop.

        The caller holds ``d``'s lock (:meth:`changing`), so no open starts one meanwhile.
        """
        stopped = 0
        for owner, name in self.servers_of(d, every=remove):
            stopped += await self.stop_server(owner, name, reason=reason, by=by, remove=remove)
        return stopped

    async def redeploy(self, d: Dashboard, *, by: str) -> bool:
        """Restart a running shared instance with the new spec; True if it was running.

        The caller holds ``d``'s lock (:meth:`changing`).
        """
        if d.mode == PER_VIEWER:
            return False
        state = await self.state(d.owner, d.slug)
        if state.status == "stopped":
            return False
        # the shared instance only: the author's previews of other versions go on
        await self.stop_server(d.owner, d.slug, reason=REDEPLOY, by=by)
        await self.start_for(d, by)
        return True

    async def unpublish(self, d: Dashboard, *, by: str) -> None:
        """Stop and remove every server of ``d``; removing a server revokes its shares.

        The caller holds ``d``'s lock (:meth:`changing`) until the record is deleted.
        """
        if d.mode != PER_VIEWER:
            await self.hub.revoke_all(d.owner, d.slug)
        await self.stop(d, by=by, reason=UNPUBLISHED, remove=True)

    # -- shares ---------------------------------------------------------------

    async def sync_shares(self, d: Dashboard) -> None:
        """Make the hub's shares of a shared server match the dashboard's targets.

        Users and groups get ``access:servers!server=owner/slug`` through the
        sharing API; "every hub user" and "public" need no shares (the open
        flow issues grants), so their shares are revoked.
        """
        if d.mode == PER_VIEWER:
            return
        want_users = set(d.share_users or []) if d.visibility == USERS else set()
        want_groups = set(d.share_groups or []) if d.visibility == GROUPS else set()
        try:
            current = await self.hub.shares(d.owner, d.slug)
        except HubAPIError as e:
            log.warning("Cannot read shares of %s: %s", d.ref, e.message)
            return
        have_users = {s["user"]["name"] for s in current if s.get("user")}
        have_groups = {s["group"]["name"] for s in current if s.get("group")}
        for user in sorted(have_users - want_users):
            await self.hub.revoke(d.owner, d.slug, user=user)
        for group in sorted(have_groups - want_groups):
            await self.hub.revoke(d.owner, d.slug, group=group)
        for user in sorted(want_users - have_users):
            await self._share(d, user=user)
        for group in sorted(want_groups - have_groups):
            await self._share(d, group=group)

    async def share_with_viewer(self, d: Dashboard, viewer: str | None) -> None:
        """The hub's share of a running shared dashboard for a viewer it names, made on
        their open: one who had not logged in yet when it started (a pending share) gets
        it now. Once per viewer and dashboard while the service runs."""
        if (
            d.mode == PER_VIEWER
            or d.visibility != USERS
            or not viewer
            or viewer not in (d.share_users or [])
            or (d.id, viewer) in self._viewer_shares
        ):
            return
        if await self._share(d, user=viewer):
            self._viewer_shares.add((d.id, viewer))

    async def _share(self, d: Dashboard, *, user: str = "", group: str = "") -> bool:
        try:
            await self.hub.share(d.owner, d.slug, user=user, group=group)
        except HubAPIError as e:
            if e.status == 404:  # the server (or user) does not exist yet: shared later
                return False
            log.warning("Cannot share %s with %s: %s", d.ref, user or group, e.message)
            return False
        return True

    async def missing_groups(self, groups: list[str]) -> list[str]:
        """The groups the hub does not know."""
        found = await asyncio.gather(*(self.hub.group(g) for g in groups))
        return [g for g, model in zip(groups, found, strict=True) if model is None]

    async def pending_users(self, users: list[str]) -> list[str]:
        """The users the hub does not know yet: shares with them wait for their first login
        (the gallery and the open flow go by name; a shared server's hub share is made
        when they open it)."""
        found = await asyncio.gather(*(self.hub.user(u) for u in users))
        return [u for u, model in zip(users, found, strict=True) if model is None]

    # -- noticing stops ---------------------------------------------------------

    def _vanished(self, owner: str, name: str, now: dt.datetime) -> str:
        reason = vanished_reason(self._last_activity.get((owner, name)), now, self.cull_timeout)
        if reason == STOPPED_ON_HUB and (owner, name) not in self._ready_seen:
            return FAILED_START
        return reason

    def server_stopping(self, owner: str, name: str) -> None:
        """The hub's spawner is stopping ``owner/name`` (whoever asked): opens from now on
        ask the hub again rather than trust its "ready" of the last
        :data:`READY_SECONDS`."""
        key = (owner, name)
        self._ready_at.pop(key, None)
        self._stop_noted[key] = time.monotonic()

    def server_ended(self, owner: str, name: str, exit_status: int) -> int:
        """The hub's spawner found ``owner/name`` ended without being asked to stop (its
        app or launcher exited, a pod was killed): close its open run as it happened.

        "crashed" (or "exited" for a clean exit), "failed to start" if it was never
        seen ready. Returns the number of runs closed.
        """
        key = (owner, name)
        if key not in self._ready_seen:
            reason = FAILED_START
        else:
            reason = EXITED if exit_status == 0 else CRASHED
        closed = self._close_records(owner, name, reason, "")
        if closed:
            log.warning(
                "%s/%s ended on its own (exit status %s): %s", owner, name, exit_status, reason
            )
        self._ready_at.pop(key, None)
        return len(closed)

    async def reconcile(self, now: dt.datetime | None = None) -> int:
        """Close the records of servers that stopped without us (culled, stopped on the hub),
        and stop the servers of dashboards that are gone.

        Remembers each running server's last activity, so that a server gone
        by the next round can be told culled from stopped (:func:`vanished_reason`).
        Returns the number of deployments closed.
        """
        now = now or dt.datetime.now(dt.timezone.utc)  # taken before the listing is asked for
        active = await self.hub.active_servers()
        for key, server in active.items():
            if server.get("ready"):
                self._ready_seen.add(key)
            seen = parse_time(server.get("last_activity"))
            if seen is not None:
                known = self._last_activity.get(key)
                self._last_activity[key] = max(seen, known) if known else seen
        closed = 0
        orphans = []
        naive = now.astimezone(dt.timezone.utc).replace(tzinfo=None)  # as the store keeps it
        with self.store.session() as db:
            rows = db.scalars(select(Deployment).where(Deployment.stopped.is_(None))).all()
            for row in rows:
                key = (row.server_owner, row.server_name)
                # a start on its way to the hub, or recorded while the listing was on its
                # way, is not in it yet
                if row.started < naive and key not in active and key not in self._starting:
                    row.stopped = utcnow()
                    row.stop_reason = self._vanished(row.server_owner, row.server_name, now)
                    closed += 1
                elif row.dashboard_id is None and key in active:
                    orphans.append((key, row.dashboard_ref))
            db.commit()
        for (owner, name), ref in orphans:  # its dashboard was unpublished: nothing serves it
            log.warning("Stopping %s/%s: its dashboard %s is gone", owner, name, ref)
            try:
                await self.stop_server(owner, name, reason=UNPUBLISHED, remove=True)
                closed += 1
            except HubAPIError as e:
                log.warning("Cannot stop %s/%s: %s", owner, name, e.message)
        for key in [k for k, t in self._last_activity.items() if k not in active and t < now]:
            del self._last_activity[key]
        self._ready_seen &= set(active) | set(self._last_activity)
        self._ready_at = {k: t for k, t in self._ready_at.items() if k in active}
        recent = time.monotonic() - 60  # older notices cannot predate an answer still awaited
        self._stop_noted = {k: t for k, t in self._stop_noted.items() if t > recent}
        return closed

    async def reconcile_forever(self, interval: float) -> None:
        while True:
            try:
                await self.reconcile()
            except SQLAlchemyError as e:
                log.error(
                    "Reconciling deployments with the hub failed: %s",
                    store_failure(e, self.store.url).log_message,
                )
            except Exception:  # keep going: the next round may succeed
                log.exception("Reconciling deployments with the hub failed")
            await asyncio.sleep(interval)
