"""Starts the hub refused with 429 wait their turn, in arrival order."""

from __future__ import annotations

import asyncio

from hub_viz.service.hubapi import HubAPIError
from hub_viz.service.startqueue import StartQueue


async def test_queued_starts_go_in_order_once_the_hub_has_room() -> None:
    room = [0]  # how many more starts the hub takes
    started: list[str] = []

    def start(name: str):
        async def run() -> None:
            if not room[0]:
                raise HubAPIError(429, "Too many users trying to log in right now")
            room[0] -= 1
            started.append(name)

        return run

    queue = StartQueue(retry=0.01)
    for name in ("a", "b", "c"):
        queue.add(name, start(name))
    queue.add("b", start("b"))  # a second open of a waiting server does not queue it twice
    assert [queue.position(n) for n in ("a", "b", "c", "d")] == [1, 2, 3, None]
    await asyncio.sleep(0.05)
    assert started == [] and len(queue) == 3  # still full: everyone keeps their place
    room[0] = 1
    await queue.changed(timeout=2)
    assert started == ["a"] and queue.position("b") == 1 and queue.position("c") == 2
    room[0] = 2
    while len(queue):  # b and c may leave within one change
        await queue.changed(timeout=2)
    assert started == ["a", "b", "c"] and len(queue) == 0
    assert queue.failure("a") is None


async def test_a_start_refused_for_good_leaves_the_queue_with_its_reason() -> None:
    async def broken() -> None:
        raise HubAPIError(400, "Cannot start dashboard 'x': the entry file is missing")

    async def fine() -> None:
        return None

    queue = StartQueue(retry=0.01)
    queue.add("x", broken)
    queue.add("y", fine)
    while len(queue):
        await queue.changed(timeout=2)
    assert queue.failure("x") == "Cannot start dashboard 'x': the entry file is missing"
    assert queue.failure("y") is None


async def test_starts_wait_for_the_services_own_room_and_go_when_woken() -> None:
    under_way: list[str] = []
    limit = 1

    def start(name: str):
        async def run() -> None:
            under_way.append(name)

        return run

    # a long retry: only wake() can let the next start go within this test; a start sent
    # counts before it is under way, as the deployer counts it
    queue = StartQueue(retry=30, room=lambda: len(set(under_way) | queue.sent) < limit)
    for name in ("a", "b", "c"):
        queue.add(name, start(name))
    await queue.changed(timeout=2)
    assert under_way == ["a"] and [queue.position(n) for n in ("b", "c")] == [1, 2]
    await asyncio.sleep(0.05)
    assert under_way == ["a"]  # no room: b waits, however long
    under_way.remove("a")  # a is ready
    queue.wake()
    await queue.changed(timeout=2)
    assert under_way == ["b"] and queue.position("c") == 1
    limit = 2  # room for one more, told by a wake
    queue.wake()
    await queue.changed(timeout=2)
    assert under_way == ["b", "c"] and len(queue) == 0


async def test_the_next_start_goes_while_the_hub_still_answers_the_one_before() -> None:
    # the hub answers a start when it is ready (up to its slow_spawn_timeout)
    answered = {name: asyncio.Event() for name in "abc"}
    sent: list[str] = []

    def start(name: str):
        async def run() -> None:
            sent.append(name)
            await answered[name].wait()

        return run

    queue = StartQueue(retry=30, room=lambda: len(queue.sent) < 2)
    for name in "abc":
        queue.add(name, start(name))
    await asyncio.sleep(0.05)
    assert sent == ["a", "b"]  # two under way at once; c waits for room
    assert [queue.position(n) for n in "abc"] == [1, 2, 3]  # places kept until answered
    answered["a"].set()
    await queue.changed(timeout=2)
    await asyncio.sleep(0.05)
    assert sent == ["a", "b", "c"] and queue.position("b") == 1
    answered["b"].set()
    answered["c"].set()
    while len(queue):
        await queue.changed(timeout=2)
    assert queue.failure("c") is None
