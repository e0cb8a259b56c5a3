"""Losing access takes effect within ``interval``: cookie viewers are re-checked.

A viewer admitted with the service's one-time grant keeps the launcher's
cookie for up to an hour after their last request. So that a dashboard made
private, a share removed or an unpublished dashboard shuts them out, the
launcher asks the service again (``HUB_VIZ_ACCESS_URL``, with the server's
own API token) at most once per ``interval`` seconds per viewer, on the
first request after that. The service's "no" drops the cookie; when the
service does not answer, the request is refused (503) and the next one asks
again. Hub-login viewers get the same bound from HubOAuth's cache, whose
``cache_max_age`` is the same interval (:mod:`hub_viz.launcher.hublogin`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

log = logging.getLogger("hub_viz.launcher")

DEFAULT_INTERVAL = 60.0


class AccessUnknown(Exception):
    """The service did not say whether the viewer may still see the dashboard."""


class AccessCheck:
    """Per viewer: when the service last said yes, and asking it again when that is stale."""

    def __init__(self, url: str, token: str, interval: float = DEFAULT_INTERVAL) -> None:
        self.url = url
        self.token = token
        self.interval = interval
        self._confirmed: dict[str, float] = {}  # viewer ("" anonymous) -> monotonic time
        self._asking: dict[str, asyncio.Future[bool]] = {}

    @classmethod
    def from_env(cls, token: str, interval: float) -> AccessCheck:
        return cls(os.environ.get("HUB_VIZ_ACCESS_URL", ""), token, interval)

    def vouched(self, viewer: str) -> None:
        """The service just granted ``viewer`` entry: good for one interval."""
        self._confirmed[viewer] = time.monotonic()

    async def allowed(self, viewer: str) -> bool:
        """May ``viewer`` still use the server? Asks the service when the last yes is stale.

        Without a service URL there is nobody to ask: True. Raises
        :class:`AccessUnknown` when the service does not answer.
        """
        if not self.url:
            return True
        confirmed = self._confirmed.get(viewer)
        if confirmed is not None and time.monotonic() - confirmed < self.interval:
            return True
        pending = self._asking.get(viewer)
        if pending is None:  # concurrent requests of one viewer ask once
            pending = asyncio.ensure_future(self._ask(viewer))
            self._asking[viewer] = pending
            pending.add_done_callback(lambda _: self._asking.pop(viewer, None))
        return await asyncio.shield(pending)

    async def _ask(self, viewer: str) -> bool:
        asked = time.monotonic()
        request = HTTPRequest(
            f"{self.url}?{urlencode({'viewer': viewer})}",
            headers={"Authorization": f"token {self.token}"},
            request_timeout=10,
        )
        try:
            response = await AsyncHTTPClient().fetch(request)
            allowed = json.loads(response.body)["allowed"]
        except Exception as e:
            log.warning(
                "The dashboard service did not confirm a viewer's access: %s",
                getattr(e, "code", type(e).__name__),
            )
            raise AccessUnknown() from None
        if allowed is True:
            self._confirmed[viewer] = asked
            return True
        self._confirmed.pop(viewer, None)
        return False
