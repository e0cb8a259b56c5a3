"""Warm pools: per-viewer instances started ahead and handed to the next viewers.

A per-viewer dashboard with ``warm_pool: N`` keeps N instances started and
ready. The next viewer who opens it gets one of them at once; from then on
that instance serves only that viewer (the launcher admits them with the
service's grant, nobody else holds one), and a replacement starts behind it.

Pool instances are named servers of one hub user, :attr:`WarmPool.user`
(``hub-viz-pool``), who never logs in: a server cannot change hands in
JupyterHub, so the viewer gets the instance, not its ownership. Instance
names are random and never reused, so a cookie for an old instance opens
nothing new.

The bookkeeping lives in the store (:class:`~hub_viz.service.store.WarmInstance`),
so a restarted service finds its pool again:

* an instance is handed to at most one viewer: the claim is one conditional
  ``UPDATE ... WHERE state = 'ready'``;
* a viewer holds at most one instance of a dashboard: the deployer serialises
  a viewer's opens, and the store refuses a second claim (a unique
  constraint) or a second open run serving them; such a claim goes back;
* a claimed instance that stops (culled when its viewer leaves, or crashed)
  is deleted, never handed on;
* an unclaimed instance that dies, fails to start or runs an older spec is
  deleted and replaced;
* all dashboards together keep at most :attr:`WarmPool.ceiling` instances,
  unclaimed or handed out and still running (the operator's bound on what the
  pool runs: no account can make it start more by claiming); unclaimed ready
  ones are kept from the idle culler by noting activity each round.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError

from ..frameworks import PER_VIEWER
from .hubapi import HubAPIError
from .store import Dashboard, Deployment, Store, WarmInstance, utcnow

log = logging.getLogger("hub_viz.service")

POOL_USER = "hub-viz-pool"
STARTING, READY, CLAIMED = "starting", "ready", "claimed"
WARM_POOL = "warm pool"  # who started a pool instance, in the deployment records
HANDED_BACK = "viewer done"  # a claimed instance that stopped
DRAINED = "warm pool drained"  # unclaimed and no longer wanted (spec changed, pool smaller)
DIED = "warm pool instance died"


def spec_digest(spec: Mapping[str, Any]) -> str:
    """A stable digest of a spawn spec: instances of an older spec are drained."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def instance_name(d: Dashboard) -> str:
    """A fresh server name: the slug's start, the dashboard's digest, a random part (≤ 30)."""
    digest = hashlib.sha256(d.ref.encode()).hexdigest()[:6]
    stem = d.slug[:14].rstrip("-")
    return f"{stem}-{digest}-{secrets.token_hex(3)}"


class WarmPool:
    """Keeps each per-viewer dashboard's warm instances and hands them out.

    ``deployer`` starts and removes servers and provides the spawn spec;
    ``activity`` notes activity for ready instances so the culler leaves them.
    """

    def __init__(
        self,
        store: Store,
        deployer: Any,
        activity: Any,
        *,
        user: str = POOL_USER,
        ceiling: int = 0,
        max_starting: int = 4,
        start_grace: float = 300.0,
        failure_backoff: float = 30.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.store = store
        self.deployer = deployer
        self.activity = activity
        self.user = user
        self.ceiling = ceiling
        self.max_starting = max_starting  # pool starts under way at once (keeps the hub free)
        self.start_grace = start_grace  # seconds a start may take before it counts as failed
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._user_known = False
        self._starts: set[asyncio.Task[None]] = set()
        self._starting_names: set[str] = set()
        # after a failed start a dashboard waits (doubling, at most 10 min) before the next
        self.failure_backoff = failure_backoff
        self.clock = clock
        self._backoff: dict[int, tuple[float, float]] = {}  # id -> (until, last wait)

    # -- viewers ----------------------------------------------------------------

    def claimed(self, d: Dashboard, viewer: str) -> str | None:
        """The server name of ``viewer``'s claimed instance of ``d``, if any."""
        with self.store.session() as db:
            return db.scalar(
                select(WarmInstance.server_name).where(
                    WarmInstance.dashboard_id == d.id,
                    WarmInstance.viewer == viewer,
                    WarmInstance.state == CLAIMED,
                )
            )

    async def claim(self, d: Dashboard, viewer: str) -> str | None:
        """Hand ``viewer`` a ready instance of ``d``; None when the pool is empty or the
        viewer already has an instance of ``d`` (theirs, or one handed to them)."""
        if d.mode != PER_VIEWER or not d.warm_pool:
            return None
        digest = self.digest(d)
        try:
            while True:
                with self.store.session() as db:
                    row = db.scalar(
                        select(WarmInstance)
                        .where(
                            WarmInstance.dashboard_id == d.id,
                            WarmInstance.state == READY,
                            WarmInstance.spec_digest == digest,
                        )
                        .order_by(WarmInstance.created)
                        .limit(1)
                    )
                    if row is None:
                        return None
                    try:
                        # an UPDATE's result is a CursorResult (it has a rowcount)
                        taken = cast(
                            "CursorResult[Any]",
                            db.execute(
                                update(WarmInstance)
                                .where(WarmInstance.id == row.id, WarmInstance.state == READY)
                                .values(state=CLAIMED, viewer=viewer, claimed=utcnow())
                            ),
                        ).rowcount
                        # its run now serves the viewer: the store allows one such run
                        db.execute(
                            update(Deployment)
                            .where(
                                Deployment.server_owner == self.user,
                                Deployment.server_name == row.server_name,
                                Deployment.stopped.is_(None),
                            )
                            .values(viewer=viewer)
                        )
                        db.commit()
                    except IntegrityError:  # a second instance for this viewer: it goes back
                        db.rollback()
                        log.warning(
                            "%s already has an instance of %s; %s/%s stays in the pool",
                            viewer,
                            d.ref,
                            self.user,
                            row.server_name,
                        )
                        return None
                if not taken:  # another open took it first: try the next one
                    continue
                state = await self.deployer.state(self.user, row.server_name)
                if state.ready:
                    log.info(
                        "Handed warm instance %s/%s of %s to %s",
                        self.user,
                        row.server_name,
                        d.ref,
                        viewer,
                    )
                    return row.server_name
                await self._discard(row.id, row.server_name, DIED)  # died since the last round
        finally:
            self.wake()  # a replacement starts behind it

    async def hand_back(self, name: str) -> None:
        """A claimed instance found stopped: remove it and its claim at once (the next
        round would), so that its viewer can be handed another one now."""
        with self.store.session() as db:
            row_id = db.scalar(
                select(WarmInstance.id).where(
                    WarmInstance.server_name == name, WarmInstance.state == CLAIMED
                )
            )
        if row_id is not None:
            await self._discard(row_id, name, HANDED_BACK)

    # -- keeping the pool -------------------------------------------------------

    def digest(self, d: Dashboard) -> str:
        return spec_digest(self.deployer.spawn_spec(d))

    def wake(self) -> None:
        self._wake.set()

    async def refill_once(self) -> dict[str, int]:
        """One round: forget what stopped, drain what is not wanted, start what is missing.

        Returns counts for the log and the tests.
        """
        async with self._round:
            counts = {"discarded": 0, "started": 0, "ready": 0}
            active = await self.deployer.hub.active_servers()
            now = utcnow()
            with self.store.session() as db:
                wanted = {
                    d.id: d
                    for d in db.scalars(
                        select(Dashboard).where(
                            Dashboard.mode == PER_VIEWER, Dashboard.warm_pool > 0
                        )
                    )
                }
                rows = db.scalars(select(WarmInstance).order_by(WarmInstance.created)).all()
            digests = {i: self.digest(d) for i, d in wanted.items()}
            unclaimed: dict[int, list[WarmInstance]] = {i: [] for i in wanted}
            handed_out = 0
            for row in rows:
                server = active.get((self.user, row.server_name))
                if row.state == CLAIMED:
                    if server is None:
                        await self._discard(row.id, row.server_name, HANDED_BACK)
                        counts["discarded"] += 1
                    else:
                        handed_out += 1
                    continue
                if row.dashboard_id not in wanted or row.spec_digest != digests[row.dashboard_id]:
                    reason = DRAINED
                elif server is None and (
                    row.state == READY
                    or (now - row.created).total_seconds() > self.start_grace
                    or not self._starting(row.server_name)
                ):
                    reason = DIED
                else:
                    if server is not None and server.get("ready"):
                        if row.state == STARTING:
                            self._set_state(row.id, READY)
                            row.state = READY
                        self.activity.note(self.user, row.server_name)
                        counts["ready"] += 1
                    unclaimed[row.dashboard_id].append(row)
                    continue
                await self._discard(row.id, row.server_name, reason)
                counts["discarded"] += 1
            for dashboard_id, have in unclaimed.items():  # a smaller pool: drop the newest
                for row in sorted(have, key=lambda r: (r.state == READY, r.created))[
                    : max(0, len(have) - wanted[dashboard_id].warm_pool)
                ]:
                    await self._discard(row.id, row.server_name, DRAINED)
                    have.remove(row)
                    counts["discarded"] += 1
            counts["started"] = await self._fill(wanted, digests, unclaimed, handed_out)
            return counts

    async def _fill(
        self,
        wanted: dict[int, Dashboard],
        digests: dict[int, str],
        unclaimed: dict[int, list[WarmInstance]],
        handed_out: int = 0,
    ) -> int:
        """Start missing instances, one dashboard at a time in turn, within the ceiling
        (which counts the instances handed out and still running too)."""
        total = handed_out + sum(len(v) for v in unclaimed.values())
        now = self.clock()
        missing = {
            i: wanted[i].warm_pool - len(unclaimed[i])
            for i in wanted
            if self._backoff.get(i, (0.0, 0.0))[0] <= now
        }
        started = 0
        while total < self.ceiling and len(self._starts) < self.max_starting:
            turn = [i for i in sorted(missing) if missing[i] > 0]
            if not turn:
                break
            for dashboard_id in turn:
                if total >= self.ceiling or len(self._starts) >= self.max_starting:
                    break
                await self._start(wanted[dashboard_id], digests[dashboard_id])
                missing[dashboard_id] -= 1
                total += 1
                started += 1
        return started

    async def _start(self, d: Dashboard, digest: str) -> None:
        await self._ensure_user()
        name = instance_name(d)
        with self.store.session() as db:
            row = WarmInstance(
                dashboard_id=d.id, server_name=name, state=STARTING, spec_digest=digest
            )
            db.add(row)
            db.commit()
            row_id = row.id
        task = asyncio.ensure_future(self._run_start(d, row_id, name))
        self._starts.add(task)
        task.add_done_callback(self._starts.discard)

    async def _run_start(self, d: Dashboard, row_id: int, name: str) -> None:
        self._starting_names.add(name)
        try:
            code = await self.deployer.start_server(d, self.user, name, by=WARM_POOL)
        except Exception as e:
            message = e.message if isinstance(e, HubAPIError) else repr(e)
            until, wait = self._backoff.get(d.id, (0.0, self.failure_backoff / 2))
            if until <= self.clock():  # not waiting yet (starts of one round fail together)
                wait = min(600.0, 2 * wait)
                self._backoff[d.id] = (self.clock() + wait, wait)
            log.warning(
                "Warm instance of %s did not start (next try in %.0f s): %s", d.ref, wait, message
            )
            await self._discard(row_id, name, DIED)
            return
        finally:
            self._starting_names.discard(name)
        self._backoff.pop(d.id, None)
        if code == 201:
            self._set_state(row_id, READY)
        self.wake()  # the next round sees it ready (or keeps waiting for it)

    def _starting(self, name: str) -> bool:
        """Is a start of ``name`` still under way in this process?"""
        return name in self._starting_names

    async def _ensure_user(self) -> None:
        if not self._user_known:
            await self.deployer.hub.create_user(self.user)
            self._user_known = True

    def _set_state(self, row_id: int, state: str) -> None:
        with self.store.session() as db:
            db.execute(
                update(WarmInstance)
                .where(WarmInstance.id == row_id, WarmInstance.state == STARTING)
                .values(state=state)
            )
            db.commit()

    async def _discard(self, row_id: int, name: str, reason: str) -> None:
        """Remove the server and forget the instance (its name is never used again)."""
        try:
            await self.deployer.remove_server(self.user, name, reason=reason)
        except HubAPIError as e:
            log.warning("Cannot remove warm instance %s/%s: %s", self.user, name, e.message)
            return  # tried again next round
        with self.store.session() as db:
            row = db.get(WarmInstance, row_id)
            if row is not None:
                db.delete(row)
                db.commit()

    async def run_forever(self, interval: float = 5.0) -> None:
        """Refill every ``interval`` seconds, and at once after a claim."""
        while True:
            try:
                counts = await self.refill_once()
                if counts["started"] or counts["discarded"]:
                    log.info("Warm pool: %s", counts)
            except Exception:  # the next round may succeed
                log.exception("Keeping the warm pool failed")
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
