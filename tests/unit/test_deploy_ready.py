"""A class opening one running dashboard at once asks the hub once, not once per student."""

from __future__ import annotations

import asyncio
from typing import Any

from hub_viz.layout import Layout
from hub_viz.service import deploy
from hub_viz.service.deploy import Deployer
from hub_viz.service.store import Dashboard, Store


class CountingHub:
    def __init__(self) -> None:
        self.asked = 0
        self.model: dict[str, Any] | None = {"ready": True}

    async def server(self, owner: str, name: str) -> dict[str, Any] | None:
        self.asked += 1
        await asyncio.sleep(0.01)  # a hub round trip
        return self.model


async def test_concurrent_opens_of_a_ready_dashboard_share_one_hub_answer(store: Store) -> None:
    hub = CountingHub()
    d = Deployer(
        hub,
        store,
        None,
        layout=Layout(),  # type: ignore[arg-type]
        service_prefix="/services/hub-viz/",
    )
    dashboard = Dashboard(
        owner="alice", slug="talk", title="Talk", framework="dash", entry="app.py", mode="shared"
    )
    with store.session() as db:  # an open reads it again under its lock
        db.add(dashboard)
        db.commit()
    states = await asyncio.gather(*(d.ensure_running(dashboard, f"s{i}") for i in range(100)))
    assert {s.status for s in states} == {"ready"}
    assert hub.asked == 1
    # an answer older than READY_SECONDS is asked for again, and a stopped server is seen
    d._ready_at[("alice", "talk")] -= deploy.READY_SECONDS + 0.1
    hub.model = None
    hub_calls = hub.asked

    async def start(owner: str, name: str, options: dict[str, Any]) -> int:
        return 202

    d.hub.start = start  # type: ignore[attr-defined]
    d.spawn_options = lambda *a: {}  # type: ignore[method-assign]
    d.sync_shares = lambda *a: asyncio.sleep(0)  # type: ignore[method-assign]
    state = await d.ensure_running(dashboard, "late")
    assert hub.asked == hub_calls + 1
    assert state.status == "pending"


def deployer_for(hub: CountingHub, store: Store) -> tuple[Deployer, Dashboard]:
    d = Deployer(
        hub,  # type: ignore[arg-type]
        store,
        None,  # type: ignore[arg-type]
        layout=Layout(),
        service_prefix="/services/hub-viz/",
    )
    dashboard = Dashboard(
        owner="alice", slug="talk", title="Talk", framework="dash", entry="app.py", mode="shared"
    )
    with store.session() as db:
        db.add(dashboard)
        db.commit()
    return d, dashboard


async def test_a_stop_notice_ends_the_shared_ready_answer_at_once(store: Store) -> None:
    hub = CountingHub()
    d, dashboard = deployer_for(hub, store)
    assert (await d.ensure_running(dashboard, "s1")).status == "ready"
    assert (await d.ensure_running(dashboard, "s2")).status == "ready"
    assert hub.asked == 1
    # the hub's spawner says the server is being stopped (an admin through the hub's API)
    d.server_stopping("alice", "talk")
    hub.model = None  # stopped

    async def start(owner: str, name: str, options: dict[str, Any]) -> int:
        return 202

    d.hub.start = start  # type: ignore[attr-defined]
    d.spawn_options = lambda *a: {}  # type: ignore[method-assign]
    d.sync_shares = lambda *a: asyncio.sleep(0)  # type: ignore[method-assign]
    # asked again, not answered from the earlier "ready": the open starts it anew
    assert (await d.ensure_running(dashboard, "s3")).status == "pending"
    assert hub.asked == 2


async def test_a_ready_answer_asked_for_before_a_stop_notice_is_not_kept(store: Store) -> None:
    hub = CountingHub()
    d, _ = deployer_for(hub, store)
    # the hub's answer is on its way when the stop notice comes: it is this open's, not
    # the next ones'
    asking = asyncio.ensure_future(d.state("alice", "talk"))
    await asyncio.sleep(0)
    d.server_stopping("alice", "talk")
    assert (await asking).status == "ready"
    assert not d._recently_ready("alice", "talk")
    # an answer asked for after the notice (a new start) is kept again
    assert (await d.state("alice", "talk")).status == "ready"
    assert d._recently_ready("alice", "talk")
