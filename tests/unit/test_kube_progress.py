"""The Kubernetes spawner's progress relay and the hub's shared events reflector."""

import asyncio
from types import SimpleNamespace

import pytest

from hub_viz.kubespawner import DashboardKubeSpawner

pytestmark = pytest.mark.unit


async def test_a_start_that_fails_at_once_does_not_cut_the_first_event_list_short():
    loaded = asyncio.Event()

    async def start_watching_events(replace: bool = False) -> None:
        await asyncio.sleep(0.2)  # the hub's first list of events, under way
        loaded.set()

    spawner = SimpleNamespace(
        events_enabled=True,
        _start_watching_events=start_watching_events,
        events=[],
        _dashboard=None,
        _emit=lambda progress, message: None,
    )
    relay = asyncio.ensure_future(DashboardKubeSpawner._relay_events(spawner))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    relay.cancel()  # the start failed at once (a missing claim): its relay stops
    # the reflector every later start waits on still finishes loading
    await asyncio.wait_for(loaded.wait(), 5)
    with pytest.raises(asyncio.CancelledError):
        await relay
