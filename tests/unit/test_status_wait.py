"""The launcher's status answers a waiting spawner once the app's start is settled."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from hub_viz.launcher.app import pool_fields, wait_while_starting
from hub_viz.launcher.process import AppState

pytestmark = pytest.mark.unit


def test_a_waiting_status_answers_once_the_app_is_ready() -> None:
    async def run() -> bool:
        app = SimpleNamespace(state=AppState.STARTING)
        waiting = asyncio.ensure_future(wait_while_starting(app, "5"))
        await asyncio.sleep(0.2)
        still_waiting = not waiting.done()
        app.state = AppState.READY
        await asyncio.wait_for(waiting, 5)
        return still_waiting

    assert asyncio.run(run())


@pytest.mark.parametrize("wait", ["", "0", "soon", "-3"])
def test_without_a_wait_the_status_answers_at_once(wait: str) -> None:
    async def run() -> None:
        app = SimpleNamespace(state=AppState.STARTING)
        await asyncio.wait_for(wait_while_starting(app, wait), 1)

    asyncio.run(run())


def test_the_services_hub_client_sends_a_whole_class_s_starts_at_once() -> None:
    """Each per-viewer open holds its start request until the instance is up: a client
    that sent 10 at once (tornado's default) made the rest of a class wait in line."""
    from hub_viz.service.hubapi import HubClient

    async def run() -> int:
        return HubClient("http://127.0.0.1:1/hub/api", "t").client.max_clients

    assert asyncio.run(run()) >= 100  # JupyterHub's own concurrent_spawn_limit


def test_an_apps_pool_answer_keeps_only_known_finite_numbers() -> None:
    answer = json.loads(
        '{"ready": 2, "starting": Infinity, "estimate_seconds": NaN, "measured": true,'
        ' "target": "3", "cap": 1.5, "extra": 1}'
    )
    assert pool_fields(answer) == {"ready": 2, "measured": True, "cap": 1.5}
