"""Report a server's activity to JupyterHub from real use only.

:func:`is_real_use` decides which proxied traffic shows a person using the
dashboard: page navigations and new websocket connections, never a bot.
Background requests (XHR polling, a hidden tab's websocket messages) do not
count, so an abandoned tab does not keep a dashboard alive; ongoing visible
use is reported by the page's phone-home pings to the service instead.
Only a launcher without an open page (a server started straight through the
hub's API) counts traffic at all: with one, the page's pings are the only
activity (docs/explanation/activity.md). Counted traffic calls
:meth:`ActivityReporter.note` (cheap: it stores a timestamp). A background loop posts the newest timestamp to the hub's
activity API at most once per interval, and only when something happened
since the last post.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..bots import is_bot

log = logging.getLogger("hub_viz.launcher")


def utcnow() -> datetime:
    """Current time in UTC (a seam for tests)."""
    return datetime.now(timezone.utc)


def is_real_use(method: str, headers: Mapping[str, str], *, websocket: bool = False) -> bool:
    """Does this request show a person using the dashboard (and so count as activity)?

    Yes for a page navigation (``Sec-Fetch-Mode: navigate``; from clients that
    send no Fetch Metadata, a GET that accepts ``text/html``) and for a new
    websocket connection. No for background requests, speculative prefetches
    and anything whose User-Agent looks like a bot. ``headers`` must look up
    names case-insensitively (tornado's ``HTTPHeaders``).
    """
    if is_bot(headers.get("User-Agent", "")):
        return False
    if websocket:
        return True
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    if "prefetch" in purpose:  # a browser guessing the next page, not a person on it
        return False
    mode = headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode.strip().lower() == "navigate"
    return method.upper() == "GET" and "text/html" in headers.get("Accept", "").lower()


def activity_body(server_name: str, when: datetime) -> dict:
    """The JSON body of ``POST /hub/api/users/{user}/activity`` for one server."""
    stamp = when.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return {"servers": {server_name: {"last_activity": stamp}}, "last_activity": stamp}


class ActivityReporter:
    """Coalesce activity notes into at most one hub API call per ``interval``."""

    def __init__(
        self,
        url: str,
        token: str,
        server_name: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.url = url
        self.token = token
        self.server_name = server_name
        self.interval = interval
        self.clock = clock
        self.last_activity: datetime | None = None
        self.last_sent: datetime | None = None
        self.posts = 0

    def note(self) -> None:
        """Record that a viewer did something just now."""
        self.last_activity = self.clock()

    def pending(self) -> bool:
        """True when there is activity the hub has not been told about."""
        return self.last_activity is not None and self.last_activity != self.last_sent

    async def flush(self) -> bool:
        """Post the newest activity if there is any; True when a post was made."""
        if not self.url or not self.pending():
            return False
        when = self.last_activity
        assert when is not None
        request = HTTPRequest(
            self.url,
            method="POST",
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=json.dumps(activity_body(self.server_name, when)),
            request_timeout=10,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as e:  # a lost report must never stop reporting
            log.warning("Could not report activity to the hub: %s", e)
            return False
        if response.code >= 400:
            log.warning("The hub refused the activity report: HTTP %s", response.code)
            return False
        self.last_sent = when
        self.posts += 1
        return True

    async def run(self) -> None:
        """Flush every ``interval`` seconds, forever."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()
