"""Starts waiting for room, taken in arrival order.

Two limits send a start here (a whole class clicking at the start of a
lecture): the service's own ``max_starting`` (starts under way at once, set
where every instance runs on the hub's machine), and JupyterHub's
``concurrent_spawn_limit`` (the hub answers 429). Rather than failing those
opens, the deployer queues the start: one worker sends the oldest as soon as
there is room (:meth:`StartQueue.wake`, or every :attr:`StartQueue.retry`
seconds), without waiting for the hub's answer (which may take the whole
start) before sending the next; a start the hub refused with 429 goes first
again once :attr:`StartQueue.retry` seconds passed. The open page tells the
viewer how many starts are ahead of theirs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from .hubapi import HubAPIError

log = logging.getLogger("hub_viz.service")

Start = Callable[[], Awaitable[Any]]


class StartQueue:
    """First in, first out: a start leaves when the hub accepts it or refuses it for good.

    A start that was sent (:attr:`sent`) keeps its place until the hub answers."""

    def __init__(self, retry: float = 1.0, room: Callable[[], bool] = lambda: True) -> None:
        self.retry = retry
        self.room = room  # may the next start go now? (the service's own limit)
        self._jobs: OrderedDict[Hashable, Start] = OrderedDict()
        self._failures: dict[Hashable, str] = {}
        self._changed = asyncio.Event()
        self._room_freed = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.sent: set[Hashable] = set()  # waiting for the hub's answer
        self._sending: set[asyncio.Future[None]] = set()  # kept: the loop holds tasks weakly
        self._hub_full_until = 0.0  # after a 429: no start is sent before then

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

    def _next(self) -> tuple[Hashable, Start] | None:
        for key, start in self._jobs.items():
            if key not in self.sent:
                return key, start
        return None

    async def _run(self) -> None:
        while self._jobs:
            self._room_freed.clear()  # before asking: a wake from now on is not missed
            job = self._next()
            if job is None or not self.room() or time.monotonic() < self._hub_full_until:
                await self._wait_for_room()
                continue
            key, start = job
            self.sent.add(key)
            task = asyncio.ensure_future(self._send(key, start))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, key: Hashable, start: Start) -> None:
        try:
            await start()
        except HubAPIError as e:
            if e.status == 429:  # still full: the oldest start goes first when room frees
                self.sent.discard(key)
                self._hub_full_until = time.monotonic() + self.retry
                return
            self._failures[key] = e.message
        except Exception as e:  # keep serving the others
            log.exception("A queued start failed")
            self._failures[key] = str(e) or type(e).__name__
        finally:
            self.wake()
        self.sent.discard(key)
        self._jobs.pop(key, None)
        while len(self._failures) > 1000:  # remembered for the progress streams only
            self._failures.pop(next(iter(self._failures)))
        self._notify()
