"""The warm pool's bookkeeping, against a stand-in for the hub and a real store.

(Handing instances to viewers through a real hub is in tests/hub/test_warm_starts.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from hub_viz.service.deploy import ServerState
from hub_viz.service.hubapi import HubAPIError
from hub_viz.service.store import Dashboard, Store, WarmInstance
from hub_viz.service.warmpool import CLAIMED, READY, STARTING, WarmPool, spec_digest

from .conftest import Notes

POOL = "hub-viz-pool"


class FakeHub:
    """Servers of the pool user: name -> model, as the hub lists active ones."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, Any]] = {}
        self.users: set[str] = set()

    async def active_servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(POOL, name): model for name, model in self.servers.items()}

    async def create_user(self, name: str) -> None:
        self.users.add(name)


class FakeDeployer:
    """What the pool asks of the deployer; starts are instant unless told otherwise."""

    def __init__(self) -> None:
        self.hub = FakeHub()
        self.started: list[str] = []
        self.removed: list[tuple[str, str]] = []
        self.pending = False  # starts answer 202 and stay pending
        self.refuse = False  # starts fail (the hub says no)

    def spawn_spec(self, d: Dashboard) -> dict[str, Any]:
        return {"framework": d.framework, "entry": d.entry, "mode": d.mode}

    async def state(self, owner: str, name: str) -> ServerState:
        model = self.hub.servers.get(name)
        if model is None:
            return ServerState(owner, name, "stopped")
        return ServerState(owner, name, "ready" if model["ready"] else "pending")

    async def start_server(self, d: Dashboard, owner: str, name: str, *, by: str) -> int:
        assert owner == POOL and by == "warm pool"
        await asyncio.sleep(0)
        if self.refuse:
            raise HubAPIError(500, "the spawner failed")
        self.started.append(name)
        self.hub.servers[name] = {"ready": not self.pending, "pending": "spawn"}
        return 202 if self.pending else 201

    async def remove_server(self, owner: str, name: str, *, reason: str, by: str = "") -> None:
        self.removed.append((name, reason))
        self.hub.servers.pop(name, None)


@pytest.fixture
def deployer() -> FakeDeployer:
    return FakeDeployer()


def make_pool(store: Store, deployer: FakeDeployer, ceiling: int = 10) -> WarmPool:
    return WarmPool(store, deployer, Notes(), user=POOL, ceiling=ceiling)


def publish(store: Store, slug: str, warm_pool: int, mode: str = "per-viewer") -> Dashboard:
    with store.session() as db:
        d = Dashboard(
            owner="alice",
            slug=slug,
            title=slug,
            framework="dash",
            entry="app.py",
            mode=mode,
            warm_pool=warm_pool,
        )
        db.add(d)
        db.commit()
        return d


def rows(store: Store) -> list[WarmInstance]:
    with store.session() as db:
        return list(db.scalars(select(WarmInstance).order_by(WarmInstance.id)))


async def settle(pool: WarmPool) -> None:
    """Let the started tasks finish, then run one more round (they mark themselves ready)."""
    for _ in range(5):
        await asyncio.gather(*pool._starts)
        await pool.refill_once()


async def test_the_pool_fills_to_its_size_and_hands_each_instance_to_one_viewer(
    store, deployer
) -> None:
    d = publish(store, "lab", warm_pool=3)
    pool = make_pool(store, deployer)
    await settle(pool)
    assert deployer.hub.users == {POOL}
    assert [r.state for r in rows(store)] == [READY] * 3

    # twenty viewers click at once: three get an instance, each a different one
    viewers = [f"s{i}" for i in range(20)]
    got = await asyncio.gather(*(pool.claim(d, v) for v in viewers))
    handed = [(v, name) for v, name in zip(viewers, got, strict=True) if name]
    assert len(handed) == 3
    assert len({name for _, name in handed}) == 3
    for viewer, name in handed:
        assert pool.claimed(d, viewer) == name
    assert {r.viewer for r in rows(store) if r.state == CLAIMED} == {v for v, _ in handed}

    # the pool refills behind them: three claimed, three ready again
    await settle(pool)
    states = [r.state for r in rows(store)]
    assert states.count(CLAIMED) == 3 and states.count(READY) == 3
    assert len(deployer.started) == 6


async def test_a_claim_never_hands_over_an_instance_that_died(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=2)
    pool = make_pool(store, deployer)
    await settle(pool)
    first, second = (r.server_name for r in rows(store))
    del deployer.hub.servers[first]  # its process died since the last round
    assert await pool.claim(d, "s1") == second
    assert (first, "warm pool instance died") in deployer.removed
    assert await pool.claim(d, "s2") is None  # empty until the pool refills


async def test_the_ceiling_holds_across_dashboards(store, deployer) -> None:
    a = publish(store, "lab-a", warm_pool=3)
    b = publish(store, "lab-b", warm_pool=3)
    pool = make_pool(store, deployer, ceiling=4)
    await settle(pool)
    by_dashboard = [r.dashboard_id for r in rows(store)]
    assert len(by_dashboard) == 4  # not 6
    assert by_dashboard.count(a.id) == 2 and by_dashboard.count(b.id) == 2  # taking turns
    # the ceiling counts what the pool handed out: claims make it start no more
    for viewer in ("s1", "s2"):
        assert await pool.claim(a, viewer)
    await settle(pool)
    assert len(rows(store)) == 4 and len(deployer.hub.servers) == 4
    assert await pool.claim(a, "s3") is None  # s3 starts an instance of their own
    # a claimed instance that stops frees its place for a new idle one
    del deployer.hub.servers[pool.claimed(a, "s1")]
    await settle(pool)
    assert len(rows(store)) == 4 and [r.state for r in rows(store)].count(CLAIMED) == 1
    assert await pool.claim(a, "s3")


async def test_one_viewer_holds_one_instance_of_a_dashboard(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=3)
    pool = make_pool(store, deployer)
    await settle(pool)
    first = await pool.claim(d, "s1")
    # a second claim by the same viewer (a race past the deployer's lock) is refused by
    # the store, and the instance it tried to take stays in the pool for someone else
    assert await pool.claim(d, "s1") is None
    assert [r.state for r in rows(store)].count(CLAIMED) == 1
    assert pool.claimed(d, "s1") == first
    assert await pool.claim(d, "s2") not in (None, first)


async def test_an_unclaimed_instance_that_dies_is_replaced(store, deployer) -> None:
    publish(store, "lab", warm_pool=2)
    pool = make_pool(store, deployer)
    await settle(pool)
    dead = rows(store)[0].server_name
    del deployer.hub.servers[dead]
    await settle(pool)
    names = [r.server_name for r in rows(store)]
    assert dead not in names and len(names) == 2
    assert (dead, "warm pool instance died") in deployer.removed


async def test_a_claimed_instance_that_stops_is_removed_not_handed_on(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=1)
    pool = make_pool(store, deployer)
    await settle(pool)
    name = await pool.claim(d, "s1")
    del deployer.hub.servers[name]  # culled when s1 left
    await settle(pool)
    assert pool.claimed(d, "s1") is None
    assert (name, "viewer done") in deployer.removed
    assert name not in [r.server_name for r in rows(store)]
    other = await pool.claim(d, "s2")
    assert other and other != name  # names are never reused


async def test_a_changed_spec_or_smaller_pool_drains_unclaimed_instances(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=3)
    pool = make_pool(store, deployer)
    await settle(pool)
    kept = await pool.claim(d, "s1")
    with store.session() as db:
        row = db.get(Dashboard, d.id)
        row.entry, row.warm_pool = "v2.py", 1
        db.commit()
    await settle(pool)
    left = rows(store)
    assert [(r.state, r.server_name) for r in left if r.state == CLAIMED] == [(CLAIMED, kept)]
    unclaimed = [r for r in left if r.state != CLAIMED]
    assert len(unclaimed) == 1
    assert unclaimed[0].spec_digest == spec_digest(
        {"framework": "dash", "entry": "v2.py", "mode": "per-viewer"}
    )
    assert sum(1 for _, reason in deployer.removed if reason == "warm pool drained") == 2


async def test_unpublished_or_shared_dashboards_keep_no_pool(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=2)
    publish(store, "talk", warm_pool=2, mode="shared")  # stored before the rule: ignored
    pool = make_pool(store, deployer)
    await settle(pool)
    assert len(rows(store)) == 2
    with store.session() as db:
        db.delete(db.get(Dashboard, d.id))
        db.commit()
    await settle(pool)
    assert rows(store) == []


async def test_failed_and_slow_starts(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=2)
    pool = make_pool(store, deployer)
    now = [1000.0]
    pool.clock = lambda: now[0]
    deployer.refuse = True
    await settle(pool)
    # two starts failed; the dashboard then waits instead of failing every round
    assert rows(store) == [] and deployer.started == []
    assert sum(1 for _, reason in deployer.removed if reason == "warm pool instance died") == 2
    now[0] += 29
    await settle(pool)
    assert len(deployer.removed) == 2
    deployer.refuse, deployer.pending = False, True
    now[0] += 2  # past the 30 s wait
    await settle(pool)
    assert [r.state for r in rows(store)] == [STARTING] * 2
    assert await pool.claim(d, "s1") is None  # still starting: nothing to hand out
    for model in deployer.hub.servers.values():
        model["ready"] = True
    await settle(pool)
    assert [r.state for r in rows(store)] == [READY] * 2
    assert pool.activity.notes[-2:] == [(POOL, r.server_name) for r in rows(store)]


async def test_a_restarted_service_finds_its_pool(store, deployer) -> None:
    d = publish(store, "lab", warm_pool=2)
    await settle(make_pool(store, deployer))
    before = [r.server_name for r in rows(store)]
    again = make_pool(store, deployer)  # a new process: nothing in memory
    await settle(again)
    assert [r.server_name for r in rows(store)] == before
    assert len(deployer.started) == 2
    assert await again.claim(d, "s1") in before
