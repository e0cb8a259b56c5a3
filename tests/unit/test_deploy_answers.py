"""The open call never calls a server ready whose app does not answer."""

from __future__ import annotations

from typing import Any

from hub_viz.layout import Layout
from hub_viz.service.deploy import Deployer
from hub_viz.service.store import Dashboard, Store


class ReadyHub:
    """The hub's model: the server is ready (it has not polled it since the app died)."""

    async def server(self, owner: str, name: str) -> dict[str, Any]:
        return {"ready": True}

    async def start(self, owner: str, name: str, options: dict[str, Any]) -> int:
        raise AssertionError("a server the hub calls ready is not started again")


async def test_a_ready_server_whose_app_does_not_answer_is_restarting(store: Store) -> None:
    d = Deployer(
        ReadyHub(),
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
        db.refresh(dashboard)
        db.expunge(dashboard)
    asked: list[tuple[str, str]] = []
    answering = False

    async def answers(owner: str, name: str) -> bool:
        asked.append((owner, name))
        return answering

    d.answers = answers
    state = await d.ensure_running(dashboard, "s1")
    assert (state.status, state.ready) == ("restarting", False)
    assert asked == [("alice", "talk")]
    state = await d.ensure_running(dashboard, "s2")  # asked again: nothing is cached
    assert state.status == "restarting" and len(asked) == 2
    answering = True
    assert (await d.ensure_running(dashboard, "s3")).ready
    assert (await d.ensure_running(dashboard, "s4")).ready
    assert len(asked) == 3, "a server seen answering is not asked again at once"
