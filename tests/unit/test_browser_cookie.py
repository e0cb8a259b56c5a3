"""An anonymous viewer's browser cookie: kept inside another site's frame only for embeds.

A tornado app on loopback calls :func:`anonymous_browser` the way the
launcher does for an anonymous viewer (of a public dashboard, or of an
anonymous embed link). HTTPS is what the front proxy tells the launcher
(``X-Forwarded-Proto``).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from tornado import httpserver, netutil, web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hub_viz.launcher.sessions import BROWSER_COOKIE, anonymous_browser

pytestmark = pytest.mark.unit

PREFIX = "/user/alice/sales/"


class Who(web.RequestHandler):
    def get(self) -> None:
        self.finish(anonymous_browser(self, embed=self.get_query_argument("embed", "") == "1"))


@pytest.fixture
async def launcher() -> AsyncIterator[str]:
    app = web.Application(
        [(PREFIX + "who", Who)],
        hub_viz=SimpleNamespace(prefix=PREFIX),
        cookie_secret=secrets.token_bytes(32),
    )
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(app, xheaders=True)
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}{PREFIX}who"
    server.stop()


async def who(url: str, https: bool = False, embed: bool = False, cookie: str = ""):
    headers = {"X-Forwarded-Proto": "https"} if https else {}
    if cookie:
        headers["Cookie"] = cookie
    request = HTTPRequest(url + ("?embed=1" if embed else ""), headers=headers)
    r = await AsyncHTTPClient().fetch(request)
    return r.body.decode(), r.headers.get_list("Set-Cookie")


def parts(set_cookie: str) -> tuple[str, set[str]]:
    first, *attributes = set_cookie.split("; ")
    return first, set(attributes)


@pytest.mark.parametrize(
    "https, embed, name, attributes",
    [
        (False, False, BROWSER_COOKIE, {f"Path={PREFIX}", "HttpOnly", "SameSite=Lax"}),
        (
            False,
            True,
            BROWSER_COOKIE,
            {f"Path={PREFIX}", "HttpOnly", "SameSite=None", "Secure", "Partitioned"},
        ),
        (
            True,
            True,
            "__Host-" + BROWSER_COOKIE,
            {"Path=/", "HttpOnly", "SameSite=None", "Secure", "Partitioned"},
        ),
    ],
    ids=["http", "http-embed", "https-embed"],
)
async def test_the_cookie_fits_where_the_dashboard_is_shown(
    launcher: str, https: bool, embed: bool, name: str, attributes: set[str]
) -> None:
    browser, [set_cookie] = await who(launcher, https, embed)
    assert browser.startswith("browser:")
    first, attrs = parts(set_cookie)
    assert first.startswith(f"{name}=")
    assert attrs == attributes
    # the same browser again: the same id, no new cookie
    again, cookies = await who(launcher, https, embed, cookie=first)
    assert (again, cookies) == (browser, [])
    # a cookie not signed by this launcher names nobody: a new browser
    forged = f"{name}={first.partition('=')[2][:-4]}AAAA"
    other, [_] = await who(launcher, https, embed, cookie=forged)
    assert other != browser
