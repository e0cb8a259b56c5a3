"""Activity reports: the request body and the coalescing reporter against a local fake hub."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from tornado import httpserver, netutil, web
from tornado.httputil import HTTPHeaders

from hub_viz.bots import is_bot
from hub_viz.launcher.activity import ActivityReporter, activity_body, is_real_use

pytestmark = pytest.mark.unit

UTC = timezone.utc
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


# -- activity_body ------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "when", "stamp"),
    [
        ("sales", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
        ("sales", datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), "2024-01-02T03:04:05.120000Z"),
        # Other time zones are converted to UTC.
        (
            "x",
            datetime(2024, 1, 2, 1, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-01-01T23:00:00Z",
        ),
        (
            "x",
            datetime(2024, 6, 30, 20, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2024-07-01T01:30:00Z",
        ),
        ("", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05Z"),
    ],
)
def test_activity_body(server: str, when: datetime, stamp: str) -> None:
    body = activity_body(server, when)
    assert body == {"servers": {server: {"last_activity": stamp}}, "last_activity": stamp}
    assert ISO_Z.match(stamp)
    assert json.loads(json.dumps(body)) == body


def test_activity_body_stamp_round_trips() -> None:
    when = datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    stamp = activity_body("s", when)["servers"]["s"]["last_activity"]
    assert stamp.endswith("Z") and "+" not in stamp
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")) == when


# -- is_real_use: which traffic counts ------------------------------------------

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
OLD_SAFARI = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/15.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": HTML}
XHR = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "application/json"}


@pytest.mark.parametrize(
    ("method", "headers", "websocket", "counts"),
    [
        # a person opening or reloading the page, or submitting a form
        ("GET", {"User-Agent": CHROME, **NAVIGATE}, False, True),
        ("POST", {"User-Agent": CHROME, **NAVIGATE}, False, True),
        ("GET", {"User-Agent": FIREFOX, **NAVIGATE, "Sec-Fetch-Dest": "iframe"}, False, True),
        # background requests of an open (maybe hidden) tab
        ("GET", {"User-Agent": CHROME, **XHR}, False, False),
        ("POST", {"User-Agent": CHROME, **XHR}, False, False),
        ("GET", {"User-Agent": CHROME, "Sec-Fetch-Mode": "no-cors", "Accept": "*/*"}, False, False),
        # an XHR asking for HTML is still not a navigation when Fetch Metadata says so
        ("GET", {"User-Agent": CHROME, "Sec-Fetch-Mode": "cors", "Accept": HTML}, False, False),
        # header names in any case
        ("GET", {"user-agent": CHROME, "sec-fetch-mode": "Navigate"}, False, True),
        # speculative loads are not a person on the page
        ("GET", {"User-Agent": CHROME, **NAVIGATE, "Sec-Purpose": "prefetch"}, False, False),
        (
            "GET",
            {"User-Agent": CHROME, **NAVIGATE, "Sec-Purpose": "prefetch;prerender"},
            False,
            False,
        ),
        ("GET", {"User-Agent": OLD_SAFARI, "Accept": HTML, "Purpose": "prefetch"}, False, False),
        # clients without Fetch Metadata: a GET for HTML is a page view
        ("GET", {"User-Agent": OLD_SAFARI, "Accept": HTML}, False, True),
        ("HEAD", {"User-Agent": OLD_SAFARI, "Accept": HTML}, False, False),
        ("GET", {"User-Agent": OLD_SAFARI, "Accept": "application/json"}, False, False),
        ("GET", {"User-Agent": OLD_SAFARI}, False, False),
        ("POST", {"User-Agent": OLD_SAFARI, "Accept": HTML}, False, False),
        # a new websocket connection is use; bots never are
        ("GET", {"User-Agent": CHROME, "Upgrade": "websocket"}, True, True),
        ("GET", {"User-Agent": GOOGLEBOT, "Upgrade": "websocket"}, True, False),
        ("GET", {"User-Agent": GOOGLEBOT, **NAVIGATE}, False, False),
        ("GET", {"User-Agent": GOOGLEBOT, "Accept": HTML}, False, False),
        ("GET", {"User-Agent": "curl/8.5.0", "Accept": "text/html"}, False, False),
        ("GET", {"User-Agent": "python-requests/2.32", "Accept": HTML}, False, False),
        ("GET", {"User-Agent": "Slackbot-LinkExpanding 1.0", **NAVIGATE}, False, False),
        ("GET", {"User-Agent": "Mozilla/5.0 HeadlessChrome/156.0", **NAVIGATE}, False, False),
        ("GET", {"Accept": HTML}, False, False),  # no User-Agent at all
        ("GET", {"Sec-Fetch-Mode": "navigate"}, True, False),
    ],
)
def test_is_real_use(method: str, headers: dict, websocket: bool, counts: bool) -> None:
    assert is_real_use(method, HTTPHeaders(headers), websocket=websocket) is counts


@pytest.mark.parametrize(
    "agent",
    [
        GOOGLEBOT,
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "facebookexternalhit/1.1",
        "Twitterbot/1.0",
        "Wget/1.21",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "",
        "Embedly/0.2",
        "Mozilla/5.0 (compatible; Yahoo! Slurp)",
        "Chrome-Lighthouse",
        "Apache-HttpClient/4.5",
    ],
)
def test_is_bot(agent: str) -> None:
    assert is_bot(agent)


@pytest.mark.parametrize("agent", [CHROME, FIREFOX, OLD_SAFARI])
def test_browsers_are_not_bots(agent: str) -> None:
    assert not is_bot(agent)


def test_the_service_uses_the_same_bot_rule() -> None:
    from hub_viz.service import base

    assert base.is_bot is is_bot


# -- a fake hub ---------------------------------------------------------------


@dataclass
class FakeHub:
    url: str
    status: int = 200
    bodies: list[dict] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


class ActivityHandler(web.RequestHandler):
    def initialize(self, hub: FakeHub) -> None:
        self.hub = hub

    def post(self, user: str) -> None:
        self.hub.bodies.append(json.loads(self.request.body))
        self.hub.authorizations.append(self.request.headers.get("Authorization", ""))
        self.hub.content_types.append(self.request.headers.get("Content-Type", ""))
        self.set_status(self.hub.status)
        self.finish()


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    fake = FakeHub(url=f"http://127.0.0.1:{port}/hub/api/users/alice/activity")
    app = web.Application([(r"/hub/api/users/([^/]+)/activity", ActivityHandler, {"hub": fake})])
    server = httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    yield fake
    server.stop()
    await server.close_all_connections()


def ticking_clock(
    start: datetime = T0, step: timedelta = timedelta(seconds=1)
) -> tuple[Callable[[], datetime], list[datetime]]:
    """A clock that advances by ``step`` on every call, and the times it gave."""
    given: list[datetime] = []

    def times() -> Iterator[datetime]:
        now = start
        while True:
            yield now
            now += step

    source = times()

    def clock() -> datetime:
        given.append(next(source))
        return given[-1]

    return clock, given


def reporter_for(hub: FakeHub, **kwargs) -> tuple[ActivityReporter, list[datetime]]:
    clock, given = ticking_clock()
    return ActivityReporter(hub.url, "hub-api-token", "sales", clock=clock, **kwargs), given


# -- ActivityReporter ---------------------------------------------------------


def test_nothing_pending_before_any_note() -> None:
    reporter = ActivityReporter("http://127.0.0.1:1/x", "t", "s", clock=lambda: T0)
    assert not reporter.pending()
    reporter.note()
    assert reporter.pending()
    assert reporter.last_activity == T0


async def test_many_notes_one_post(hub: FakeHub) -> None:
    reporter, given = reporter_for(hub)
    for _ in range(50):
        reporter.note()
    assert await reporter.flush() is True
    assert len(hub.bodies) == 1
    # The newest note is what the hub hears about.
    assert hub.bodies[0] == activity_body("sales", given[-1])
    assert hub.bodies[0]["servers"]["sales"]["last_activity"] == "2024-03-01T12:00:49Z"
    assert hub.authorizations == ["token hub-api-token"]
    assert hub.content_types == ["application/json"]
    assert reporter.posts == 1
    assert not reporter.pending()


async def test_second_flush_without_news_posts_nothing(hub: FakeHub) -> None:
    reporter, _ = reporter_for(hub)
    reporter.note()
    assert await reporter.flush() is True
    assert await reporter.flush() is False
    assert await reporter.flush() is False
    assert len(hub.bodies) == 1
    assert reporter.posts == 1


async def test_new_activity_after_a_flush_is_posted(hub: FakeHub) -> None:
    reporter, given = reporter_for(hub)
    reporter.note()
    await reporter.flush()
    reporter.note()
    reporter.note()
    assert reporter.pending()
    assert await reporter.flush() is True
    assert [b["last_activity"] for b in hub.bodies] == [
        activity_body("s", given[0])["last_activity"],
        activity_body("s", given[2])["last_activity"],
    ]
    assert reporter.posts == 2


async def test_no_note_no_post(hub: FakeHub) -> None:
    reporter, _ = reporter_for(hub)
    assert await reporter.flush() is False
    assert hub.bodies == []


async def test_hub_refusal_keeps_activity_pending(hub: FakeHub) -> None:
    hub.status = 403
    reporter, given = reporter_for(hub)
    reporter.note()
    assert await reporter.flush() is False
    assert len(hub.bodies) == 1  # the hub was asked ...
    assert reporter.pending()  # ... but the activity still counts as unreported
    assert reporter.posts == 0
    assert reporter.last_sent is None
    # Once the hub accepts, the same activity is reported again.
    hub.status = 200
    assert await reporter.flush() is True
    assert hub.bodies[1] == activity_body("sales", given[0])
    assert not reporter.pending()
    assert reporter.posts == 1


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_hub_errors_return_false(hub: FakeHub, status: int) -> None:
    hub.status = status
    reporter, _ = reporter_for(hub)
    reporter.note()
    assert await reporter.flush() is False
    assert reporter.pending()


async def test_no_url_no_post(hub: FakeHub) -> None:
    clock, _ = ticking_clock()
    reporter = ActivityReporter("", "hub-api-token", "sales", clock=clock)
    reporter.note()
    assert await reporter.flush() is False
    assert hub.bodies == []
    assert reporter.posts == 0
    assert reporter.pending()


async def test_unreachable_hub_returns_false() -> None:
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    for s in sockets:
        s.close()  # nothing listens there any more: connection refused
    reporter = ActivityReporter(f"http://127.0.0.1:{port}/a", "t", "s", clock=lambda: T0)
    reporter.note()
    assert await reporter.flush() is False
    assert reporter.pending()


async def test_hub_dropping_the_connection_returns_false() -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # read the request head, then hang up
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reporter = ActivityReporter(f"http://127.0.0.1:{port}/a", "t", "s", clock=lambda: T0)
        reporter.note()
        assert await reporter.flush() is False
        assert reporter.pending()
    finally:
        server.close()
        await server.wait_closed()


async def test_run_flushes_every_interval(hub: FakeHub) -> None:
    reporter, _ = reporter_for(hub, interval=0.01)
    reporter.note()
    task = asyncio.ensure_future(reporter.run())
    try:
        for _ in range(500):
            if hub.bodies:
                break
            await asyncio.sleep(0.01)
        # Idle afterwards: a few more intervals pass without a second post.
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(hub.bodies) == 1
    assert reporter.posts == 1
