"""The per-dashboard lock: opens together, a change alone, a waiting change first."""

from __future__ import annotations

import asyncio

from hub_viz.service.locks import SharedLock


async def test_opens_share_a_change_waits_for_them_and_later_opens_wait_for_it() -> None:
    lock = SharedLock()
    events: list[str] = []

    async def open_(name: str, hold: asyncio.Event) -> None:
        async with lock.shared():
            events.append(f"{name} in")
            await hold.wait()
        events.append(f"{name} out")

    async def change() -> None:
        async with lock.exclusive():
            events.append("change")

    first, second = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.ensure_future(open_("a", first)), asyncio.ensure_future(open_("b", first))]
    await asyncio.sleep(0)
    assert events == ["a in", "b in"]  # together
    tasks.append(asyncio.ensure_future(change()))
    await asyncio.sleep(0)
    tasks.append(asyncio.ensure_future(open_("c", second)))  # arrives after the change
    await asyncio.sleep(0)
    assert events == ["a in", "b in"]
    first.set()
    second.set()
    await asyncio.gather(*tasks)
    assert events == ["a in", "b in", "a out", "b out", "change", "c in", "c out"]


async def test_a_change_cancelled_while_waiting_lets_the_opens_behind_it_go() -> None:
    lock = SharedLock()
    release = asyncio.Event()

    async def hold() -> None:
        async with lock.shared():
            await release.wait()

    async def change() -> None:
        async with lock.exclusive():
            pass

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(change())
    await asyncio.sleep(0)
    behind = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert lock._readers == 2  # the open behind the cancelled change got in
    release.set()
    await asyncio.gather(holder, behind)
