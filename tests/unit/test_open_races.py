"""Opens racing each other and the author's changes, against a stand-in hub and a real store.

The stand-in answers like the hub's REST API, with a round trip's pause at every
call so that concurrent opens interleave as they do under load. (Through a real
hub: tests/hub/test_races.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from hub_viz.layout import Layout
from hub_viz.service.dashboards import NotFound
from hub_viz.service.deploy import UNPUBLISHED, Deployer
from hub_viz.service.store import Dashboard, Deployment, Store, WarmInstance
from hub_viz.service.warmpool import WarmPool

from .conftest import Notes

POOL = "hub-viz-pool"


class StandInHub:
    """Servers by (owner, name): started ready at once, with a pause on every call."""

    def __init__(self) -> None:
        self.servers: dict[tuple[str, str], dict[str, Any]] = {}
        self.starts: list[tuple[str, str]] = []

    async def _trip(self) -> None:
        await asyncio.sleep(0.005)

    async def server(self, owner: str, name: str) -> dict[str, Any] | None:
        await self._trip()
        return self.servers.get((owner, name))

    async def start(self, owner: str, name: str, options: dict[str, Any]) -> int:
        await self._trip()
        if (owner, name) in self.servers:
            return 0
        self.starts.append((owner, name))
        self.servers[(owner, name)] = {"ready": True}
        return 201

    async def stop(self, owner: str, name: str, remove: bool = False) -> None:
        await self._trip()
        self.servers.pop((owner, name), None)

    async def active_servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        await self._trip()
        return dict(self.servers)

    async def create_user(self, name: str) -> None:
        pass

    async def shares(self, owner: str, name: str) -> list[dict[str, Any]]:
        return []

    async def revoke_all(self, owner: str, name: str) -> None:
        pass


def deployer(store: Store, hub: StandInHub, pool_ceiling: int = 0) -> Deployer:
    d = Deployer(
        hub,
        store,
        None,
        layout=Layout(),  # type: ignore[arg-type]
        service_prefix="/services/hub-viz/",
    )
    d.spawn_options = lambda *a: {}  # type: ignore[method-assign]
    if pool_ceiling:
        d.pool = WarmPool(store, d, Notes(), user=POOL, ceiling=pool_ceiling)
    return d


def publish(store: Store, mode: str = "per-viewer", warm_pool: int = 0) -> Dashboard:
    with store.session() as db:
        d = Dashboard(
            owner="alice",
            slug="lab",
            title="Lab",
            framework="dash",
            entry="app.py",
            mode=mode,
            warm_pool=warm_pool,
        )
        db.add(d)
        db.commit()
        return d


def open_runs(store: Store) -> list[Deployment]:
    with store.session() as db:
        return list(db.scalars(select(Deployment).where(Deployment.stopped.is_(None))))


async def fill_pool(d: Deployer) -> None:
    for _ in range(3):
        await d.pool.refill_once()
        await asyncio.gather(*d.pool._starts)


async def test_four_opens_at_once_by_one_viewer_get_one_pool_instance(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store, warm_pool=3)
    d = deployer(store, hub, pool_ceiling=3)
    await fill_pool(d)
    assert len(hub.servers) == 3
    states = await asyncio.gather(*(d.ensure_running(dashboard, "s1") for _ in range(4)))
    assert len({(s.owner, s.name) for s in states}) == 1  # one instance for all four
    assert {s.status for s in states} == {"ready"}
    assert states[0].owner == POOL
    assert ("s1", d.locate(dashboard, "s1")[1]) not in hub.starts  # not their own either
    with store.session() as db:
        claims = db.scalars(select(WarmInstance).where(WarmInstance.viewer == "s1")).all()
    assert len(claims) == 1
    assert [r.viewer for r in open_runs(store)].count("s1") == 1
    # the pool refills within its ceiling, which counts the instance handed out
    await fill_pool(d)
    assert len(hub.servers) == 3


async def test_a_viewer_whose_instance_was_culled_gets_another_at_once(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store, warm_pool=2)
    d = deployer(store, hub, pool_ceiling=2)
    await fill_pool(d)
    first = await d.ensure_running(dashboard, "s1")
    del hub.servers[(first.owner, first.name)]  # culled; no round has noticed yet
    again = await d.ensure_running(dashboard, "s1")
    assert again.status == "ready" and again.owner == POOL and again.name != first.name
    assert [r.server_name for r in open_runs(store) if r.viewer == "s1"] == [again.name]


async def test_four_opens_at_once_without_a_pool_start_one_server(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)
    states = await asyncio.gather(*(d.ensure_running(dashboard, "s1") for _ in range(4)))
    assert len({(s.owner, s.name) for s in states}) == 1
    assert len(hub.starts) == 1
    assert [(r.server_owner, r.viewer) for r in open_runs(store)] == [("s1", "s1")]


async def test_an_unpublish_during_opens_leaves_nothing_running(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)

    async def unpublish() -> None:
        await asyncio.sleep(0.002)  # while the first opens are on their way
        async with d.changing(dashboard.id) as fresh:
            await d.unpublish(fresh, by="alice")
            with store.session() as db:
                db.delete(db.merge(fresh))
                db.commit()

    opens = [d.ensure_running(dashboard, f"s{i}") for i in range(6)]
    results = await asyncio.gather(unpublish(), *opens, return_exceptions=True)
    refused = [r for r in results[1:] if isinstance(r, Exception)]
    assert all(isinstance(r, NotFound) and "unpublished" in r.message for r in refused)
    assert hub.servers == {}  # every server it started is stopped again
    assert open_runs(store) == []  # and no record is left open (nor without its dashboard)
    with store.session() as db:
        closed = db.scalars(select(Deployment)).all()
    assert {r.stop_reason for r in closed} <= {UNPUBLISHED}
    # opens after it find it gone
    with pytest.raises(NotFound, match="unpublished"):
        await d.ensure_running(dashboard, "late")


async def test_stop_after_a_mode_change_reaches_every_server_with_an_open_run(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)
    await asyncio.gather(*(d.ensure_running(dashboard, f"s{i}") for i in range(3)))
    with store.session() as db:  # an update to shared mode that did not stop them
        db.get(Dashboard, dashboard.id).mode = "shared"
        db.commit()
    async with d.changing(dashboard.id) as fresh:
        stopped = await d.stop(fresh, by="alice", reason="stopped by author")
    assert stopped == 3
    assert hub.servers == {} and open_runs(store) == []


async def test_reconcile_stops_servers_whose_dashboard_is_gone(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)
    await d.ensure_running(dashboard, "s1")
    with store.session() as db:  # deleted behind the service's back (an older version's race)
        db.delete(db.get(Dashboard, dashboard.id))
        db.commit()
    assert [r.dashboard_id for r in open_runs(store)] == [None]
    await d.reconcile()
    assert hub.servers == {} and open_runs(store) == []


async def test_a_refused_stop_keeps_its_run_open(store: Store) -> None:
    from hub_viz.service.hubapi import HubAPIError

    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)
    await d.ensure_running(dashboard, "s1")

    async def refuse(owner: str, name: str, remove: bool = False) -> None:
        raise HubAPIError(503, "the hub is busy")

    hub.stop = refuse  # type: ignore[method-assign]
    async with d.changing(dashboard.id) as fresh:
        with pytest.raises(HubAPIError):
            await d.stop(fresh, by="alice", reason="stopped by author")
    assert [r.server_owner for r in open_runs(store)] == ["s1"]  # the record was repaired


async def test_opens_are_counted_only_if_the_store_can_write(store: Store, caplog) -> None:
    """A store that refuses writes (here SQLite's query_only) does not fail an open of a
    running dashboard: the open is not counted, and the operator's log says why."""
    hub = StandInHub()
    dashboard = publish(store, mode="shared")
    d = deployer(store, hub)
    d.sync_shares = lambda *a: asyncio.sleep(0)  # type: ignore[method-assign]
    await d.ensure_running(dashboard, None)

    from sqlalchemy import event

    def read_only(conn: Any, _record: Any) -> None:
        conn.execute("PRAGMA query_only=ON")

    store.engine.dispose()
    event.listen(store.engine, "connect", read_only)
    state = await d.ensure_running(dashboard, "s1")
    assert state.status == "ready"
    d.record_open(dashboard, "s1")  # logged, not raised
    assert "An open of alice/lab was not counted" in caplog.text
    assert "read-only" in caplog.text


async def test_a_stop_does_not_claim_a_run_that_had_already_ended(store: Store) -> None:
    hub = StandInHub()
    dashboard = publish(store)
    d = deployer(store, hub)
    await asyncio.gather(d.ensure_running(dashboard, "s1"), d.ensure_running(dashboard, "s2"))
    hub.servers.pop(("s1", d.locate(dashboard, "s1")[1]))  # stopped on the hub, unnoticed
    async with d.changing(dashboard.id) as fresh:
        assert await d.stop(fresh, by="alice", reason="stopped by author") == 1
    with store.session() as db:
        runs = {
            r.server_owner: (r.stop_reason, r.stopped_by) for r in db.scalars(select(Deployment))
        }
    assert runs == {"s1": ("stopped on the hub", ""), "s2": ("stopped by author", "alice")}
