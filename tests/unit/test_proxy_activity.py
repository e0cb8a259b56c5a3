"""The launcher's proxy notes activity for page views and new websockets only.

A small app on localhost stands in for the dashboard; the handler under test
is the launcher's proxy mixin with a counter for ``note_activity()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from tornado import web, websocket
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hub_viz.launcher.proxy import ProxyMixin

from ..loopback import serve

pytestmark = pytest.mark.unit

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PAGE = {
    "User-Agent": CHROME,
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
    "Accept": "text/html,*/*;q=0.8",
}
POLL = {
    "User-Agent": CHROME,
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Accept": "application/json",
}


class AppPage(web.RequestHandler):
    def get(self) -> None:
        self.finish("<p>dashboard</p>")

    def post(self) -> None:
        self.finish({"ok": True})


class AppSocket(websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message)


@dataclass
class Counter:
    notes: int = 0


class Proxy(ProxyMixin, websocket.WebSocketHandler):
    """The launcher's proxying without its login checks."""

    def initialize(self, port: int, counter: Counter) -> None:
        self._port = port
        self.counter = counter

    @property
    def app_port(self) -> int:  # type: ignore[override]
        return self._port

    app_token = ""

    def note_activity(self) -> None:
        self.counter.notes += 1

    def check_xsrf_cookie(self) -> None:
        pass

    async def get(self, *args: str) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await self.open_upstream_websocket()
            await websocket.WebSocketHandler.get(self)
            return
        await self.proxy_http()

    async def post(self, *args: str) -> None:
        await self.proxy_http()


@dataclass
class Setup:
    url: str
    counter: Counter


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    upstream, app_port = serve(web.Application([(r"/ws", AppSocket), (r"/.*", AppPage)]))
    counter = Counter()
    front, port = serve(web.Application([(r"/.*", Proxy, {"port": app_port, "counter": counter})]))
    yield Setup(f"127.0.0.1:{port}", counter)
    front.stop()
    upstream.stop()


async def fetch(url: str, headers: dict, method: str = "GET") -> int:
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(url, method=method, headers=headers, body=b"{}" if method == "POST" else None),
        raise_error=False,
    )
    return response.code


async def test_page_views_count_and_background_requests_do_not(setup: Setup) -> None:
    base = f"http://{setup.url}"
    assert await fetch(f"{base}/", PAGE) == 200
    assert setup.counter.notes == 1
    for _ in range(5):  # a hidden tab polling
        assert await fetch(f"{base}/_dash-layout", POLL) == 200
        assert await fetch(f"{base}/_dash-update-component", POLL, method="POST") == 200
    assert setup.counter.notes == 1
    # a crawler's page views never count
    assert await fetch(f"{base}/", {**PAGE, "User-Agent": GOOGLEBOT}) == 200
    assert await fetch(f"{base}/", {"User-Agent": GOOGLEBOT, "Accept": "text/html"}) == 200
    assert setup.counter.notes == 1
    # a browser without Fetch Metadata asking for a page
    assert await fetch(f"{base}/", {"User-Agent": CHROME, "Accept": "text/html"}) == 200
    assert setup.counter.notes == 2


async def test_a_new_websocket_counts_and_its_messages_do_not(setup: Setup) -> None:
    request = HTTPRequest(f"ws://{setup.url}/ws", headers={"User-Agent": CHROME})
    conn = await websocket.websocket_connect(request)
    try:
        for i in range(5):
            await conn.write_message(f"tick {i}")
            assert await asyncio.wait_for(conn.read_message(), 10) == f"tick {i}"
        assert setup.counter.notes == 1
    finally:
        conn.close()
    request = HTTPRequest(f"ws://{setup.url}/ws", headers={"User-Agent": GOOGLEBOT})
    bot = await websocket.websocket_connect(request)
    try:
        await bot.write_message("hello")
        assert await asyncio.wait_for(bot.read_message(), 10) == "hello"
    finally:
        bot.close()
    assert setup.counter.notes == 1
