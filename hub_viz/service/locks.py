"""Per-dashboard locks: many opens at once, or one change (update, unpublish) alone.

Opens of one dashboard hold its lock shared: they do not wait for each other.
An update, a mode change or an unpublish holds it alone: it waits for the opens
under way and the opens that come after it wait for it, then read the dashboard
again (it may be gone, or run in another mode). A waiting change goes before
opens that arrive after it, so a class opening a dashboard cannot starve its
author's unpublish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class SharedLock:
    """A readers-writer lock for asyncio tasks, writers first."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._cond:
            self._writers_waiting += 1
            try:
                await self._cond.wait_for(lambda: not self._writer and not self._readers)
            except BaseException:  # cancelled while waiting: the opens it held back go on
                self._writers_waiting -= 1
                self._cond.notify_all()
                raise
            self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._cond:
                self._writer = False
                self._cond.notify_all()


class Locks:
    """Locks by key, made on first use.

    Dashboard locks are kept (one per dashboard id); plain locks, one per server or
    per viewer of a dashboard, are forgotten once nobody holds or waits for them.
    """

    def __init__(self) -> None:
        self._shared: dict[Hashable, SharedLock] = {}
        self._plain: dict[Hashable, asyncio.Lock] = {}

    def dashboard(self, key: Hashable) -> SharedLock:
        return self._shared.setdefault(key, SharedLock())

    def one(self, key: Hashable) -> asyncio.Lock:
        if len(self._plain) > 1000:
            self._plain = {
                k: v for k, v in self._plain.items() if v.locked() or getattr(v, "_waiters", None)
            }
        return self._plain.setdefault(key, asyncio.Lock())
