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
