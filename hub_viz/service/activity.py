"""Activity for the hub, coalesced: at most one POST per server per interval.

Phone-home pings and keep-warm windows call :meth:`ActivityCoalescer.note`;
the coalescer remembers the newest time per server and sends it to
``POST /hub/api/users/<owner>/activity`` (scope ``users:activity``) at most
once per ``interval`` per server, however many viewers ping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("hub_viz.service")

Post = Callable[[str, str, str], Awaitable[None]]


class ActivityCoalescer:
    """Collects notes per (owner, server) and flushes each at most once per interval."""

    def __init__(self, post: Post, interval: float = 60) -> None:
        self.post = post
        self.interval = interval
        self._pending: dict[tuple[str, str], dt.datetime] = {}
        self._last_sent: dict[tuple[str, str], float] = {}
        self.posts = 0  # activity POSTs sent (for benchmarks and tests)

    def note(self, owner: str, server: str, when: dt.datetime | None = None) -> None:
        self._pending[(owner, server)] = when or dt.datetime.now(dt.timezone.utc)

    def due(self, now: float | None = None) -> list[tuple[str, str]]:
        now = time.monotonic() if now is None else now
        return [
            key for key in self._pending if now - self._last_sent.get(key, -1e12) >= self.interval
        ]

    async def flush(self, now: float | None = None) -> int:
        """Send what is due; returns how many POSTs were made."""
        now = time.monotonic() if now is None else now
        sent = 0
        for key in self.due(now):
            when = self._pending.pop(key)
            self._last_sent[key] = now
            try:
                await self.post(key[0], key[1], when.isoformat().replace("+00:00", "Z"))
                sent += 1
                self.posts += 1
            except Exception as e:  # the next ping tries again
                log.warning("Activity for %s/%s not sent: %s", key[0], key[1], e)
        return sent

    async def run(self, tick: float = 1.0) -> None:
        while True:
            await self.flush()
            await asyncio.sleep(tick)


class PingLimiter:
    """Accepts at most one ping per viewer and server per ``min_interval`` seconds."""

    def __init__(self, min_interval: float = 10, max_entries: int = 100_000) -> None:
        self.min_interval = min_interval
        self.max_entries = max_entries
        self._last: dict[tuple[str, str, str], float] = {}

    def accept(self, viewer: str, owner: str, server: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        key = (viewer, owner, server)
        last = self._last.get(key)
        if last is not None and now - last < self.min_interval:
            return False
        if len(self._last) >= self.max_entries:  # forget the stale half, keep memory bounded
            cutoff = now - self.min_interval
            self._last = {k: t for k, t in self._last.items() if t > cutoff}
        self._last[key] = now
        return True
