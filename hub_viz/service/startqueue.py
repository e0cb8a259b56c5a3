"""Starts waiting for room, taken in arrival order.

Two limits send a start here (a whole class clicking at the start of a
lecture): the service's own ``max_starting`` (starts under way at once, set
where every instance runs on the hub's machine), and JupyterHub's
``concurrent_spawn_limit`` (the hub answers 429). Rather than failing those
opens, the deployer queues the start: one worker takes the oldest as soon as
there is room (:meth:`StartQueue.wake`, or every :attr:`StartQueue.retry`
seconds) and asks the hub again after a 429, and the open page tells the
viewer how many starts are ahead of theirs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from .hubapi import HubAPIError

log = logging.getLogger("hub_viz.service")

Start = Callable[[], Awaitable[Any]]


class StartQueue:
    """First in, first out: a start leaves when the hub accepts it or refuses it for good."""

    def __init__(self, retry: float = 1.0, room: Callable[[], bool] = lambda: True) -> None:
        self.retry = retry
        self.room = room  # may the next start go now? (the service's own limit)
        self._jobs: OrderedDict[Hashable, Start] = OrderedDict()
        self._failures: dict[Hashable, str] = {}
        self._changed = asyncio.Event()
        self._room_freed = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, key: Hashable, start: Start) -> None:
        """Queue ``start`` for ``key`` (a server) unless it waits already."""
        if key in self._jobs:
            return
        self._failures.pop(key, None)
        self._jobs[key] = start
        self._notify()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._run())

    def wake(self) -> None:
        """A start under way ended (ready or failed): the next one may go."""
        self._room_freed.set()

    def position(self, key: Hashable) -> int | None:
        """1 for the next start, 2 behind it, ...; None when ``key`` is not waiting."""
        for i, queued in enumerate(self._jobs, 1):
            if queued == key:
                return i
        return None

    def failure(self, key: Hashable) -> str | None:
        """Why the hub refused ``key``'s start once it left the queue (None: it started)."""
        return self._failures.get(key)

    async def changed(self, timeout: float) -> None:
        """Wait until a start leaves or joins the queue, or ``timeout`` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._changed.wait()), timeout)
        except asyncio.TimeoutError:
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_room(self) -> None:
        """Until :meth:`wake` (since the event was last cleared) or :attr:`retry` seconds."""
        try:
            await asyncio.wait_for(self._room_freed.wait(), self.retry)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        while self._jobs:
            self._room_freed.clear()  # before asking: a wake from now on is not missed
            if not self.room():
                await self._wait_for_room()
                continue
            key, start = next(iter(self._jobs.items()))
            try:
                await start()
            except HubAPIError as e:
                if e.status == 429:  # still full: the oldest start goes first when room frees
                    await self._wait_for_room()
                    continue
                self._failures[key] = e.message
            except Exception as e:  # keep serving the others
                log.exception("A queued start failed")
                self._failures[key] = str(e) or type(e).__name__
            del self._jobs[key]
            while len(self._failures) > 1000:  # remembered for the progress streams only
                self._failures.pop(next(iter(self._failures)))
            self._notify()
