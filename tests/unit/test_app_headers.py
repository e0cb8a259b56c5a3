"""What an app may send back through the launcher: its own cookies, public redirects.

The rules as pure functions first, then a real tornado app behind the
launcher's proxy that tries to set every kind of cookie and redirects to
its own internal address in every header that carries a URL.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from tornado import web, websocket
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hub_viz.launcher.app_headers import (
    is_reserved_cookie,
    public_refresh,
    public_url,
    set_cookie_refusal,
)
from hub_viz.launcher.proxy import ProxyMixin, filter_cookie_header

from ..loopback import serve

pytestmark = pytest.mark.unit

PREFIX = "/user/alice/sales/"
PORT = 48123


# -- cookies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("jupyterhub-session-id", True),
        ("jupyterhub-hub-login", True),
        ("jupyterhub-user-alice-sales", True),  # the launcher's own HubOAuth cookie
        ("jupyterhub-user-alice-sales-oauth-state", True),
        ("__Host-jupyterhub-user-alice", True),
        ("__Secure-jupyterhub-session-id", True),
        ("service-hub-viz", True),  # the hub_viz service's HubOAuth cookie
        ("service-hub-viz-oauth-state", True),
        ("_xsrf", True),
        ("hub-viz-viewer", True),
        ("__Host-hub-viz-viewer-0123456789abcdef", True),
        ("JupyterHub-Session-Id", True),
        ("session", False),
        ("theme", False),
        ("__Host-app", False),
        ("my-jupyterhub-pref", False),
        ("_streamlit_xsrf", False),
    ],
)
def test_reserved_cookie_names(name: str, reserved: bool) -> None:
    assert is_reserved_cookie(name) is reserved


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("theme=dark", ""),
        ("theme=dark; Path=/user/alice/sales/", ""),
        ("theme=dark; Path=/user/alice/sales", ""),
        ("theme=dark; Path=/user/alice/sales/charts/; HttpOnly; SameSite=Lax", ""),
        ("theme=dark; path=/; HttpOnly", "Path is outside"),
        ("theme=dark; Path=/user/alice/", "Path is outside"),
        ("theme=dark; Path=/user/alice/salesforce/", "Path is outside"),
        ("theme=dark; Path=/hub/", "Path is outside"),
        ("theme=dark; Path=/user/alice/sales/; Path=/", "Path is outside"),
        ("theme=dark; Domain=example.org", "Domain"),
        ("theme=dark; domain=127.0.0.1; Path=/user/alice/sales/", "Domain"),
        ("theme=dark; Domain=", "Domain"),
        ("jupyterhub-session-id=x; Path=/user/alice/sales/", "names a hub"),
        ("jupyterhub-user-alice-sales=forged", "names a hub"),
        ("_xsrf=2|a|b", "names a hub"),
        ("service-hub-viz=x; Path=/services/hub-viz/", "names a hub"),
        ("hub-viz-viewer=x", "names a hub"),
        ("__Host-hub-viz-viewer-0123=x; Path=/; Secure", "names a hub"),
        ("no-equals-sign", "not a cookie"),
        ("=value-only", "not a cookie"),
    ],
)
def test_set_cookie_refusal(header: str, reason: str) -> None:
    name, why = set_cookie_refusal(header, PREFIX)
    if reason:
        assert reason in why
    else:
        assert why == ""
    assert "=" not in name or not name  # the name only, never the value


def test_the_viewer_cookie_never_reaches_the_app() -> None:
    cookies = (
        "theme=dark; hub-viz-viewer=SECRET; __Host-hub-viz-viewer-ab12=SECRET; "
        "service-hub-viz=SECRET; session=1"
    )
    assert filter_cookie_header(cookies) == "theme=dark; session=1"


# -- redirects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"http://127.0.0.1:{PORT}{PREFIX}page?x=1", f"{PREFIX}page?x=1"),
        (f"http://127.0.0.1:{PORT}{PREFIX}", PREFIX),
        (f"http://127.0.0.1:{PORT}", PREFIX),
        (f"http://127.0.0.1:{PORT}/", PREFIX),
        (f"http://127.0.0.1:{PORT}/login#top", f"{PREFIX}login#top"),
        (f"https://localhost:{PORT}{PREFIX}a", f"{PREFIX}a"),
        (f"http://LOCALHOST:{PORT}{PREFIX}a", f"{PREFIX}a"),
        (f"http://[::1]:{PORT}{PREFIX}a", f"{PREFIX}a"),
        (f"//127.0.0.1:{PORT}{PREFIX}a", f"{PREFIX}a"),
        (f"ws://127.0.0.1:{PORT}{PREFIX}ws", f"{PREFIX}ws"),
        (f"http://user@127.0.0.1:{PORT}{PREFIX}a", f"{PREFIX}a"),
        # not the app's internal address: left alone
        (f"{PREFIX}page", f"{PREFIX}page"),
        ("page", "page"),
        ("https://hub.example.org/user/alice/sales/", "https://hub.example.org/user/alice/sales/"),
        ("http://127.0.0.1:9999/other", "http://127.0.0.1:9999/other"),
        ("mailto:someone@example.org", "mailto:someone@example.org"),
    ],
)
def test_public_url(value: str, expected: str) -> None:
    assert public_url(value, PORT, PREFIX) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"0; url=http://127.0.0.1:{PORT}{PREFIX}next", f"0; url={PREFIX}next"),
        (f"5;URL='http://127.0.0.1:{PORT}/next'", f"5;URL='{PREFIX}next'"),
        (f"3, http://127.0.0.1:{PORT}{PREFIX}", f"3, {PREFIX}"),
        ("10", "10"),
        ("0; url=https://example.org/", "0; url=https://example.org/"),
    ],
)
def test_public_refresh(value: str, expected: str) -> None:
    assert public_refresh(value, PORT, PREFIX) == expected


# -- a real app behind the proxy ------------------------------------------------------

APP_COOKIES = [
    ("theme=dark; Path=/user/alice/sales/", True),
    ("local=1", True),
    ("everywhere=1; Path=/", False),
    ("sibling=1; Path=/user/alice/other/", False),
    ("parent=1; Domain=127.0.0.1; Path=/user/alice/sales/", False),
    ("jupyterhub-session-id=PLANTED; Path=/", False),
    ("jupyterhub-hub-login=PLANTED; Path=/hub/", False),
    ("jupyterhub-user-alice-sales=PLANTED; Path=/user/alice/sales/", False),
    ("service-hub-viz=PLANTED; Path=/services/hub-viz/", False),
    ("_xsrf=PLANTED; Path=/user/alice/sales/", False),
    ("hub-viz-viewer=PLANTED; Path=/user/alice/sales/", False),
]


class TossingApp(web.RequestHandler):
    """An author's app that tries to plant cookies and redirects to its own address."""

    def get(self, what: str) -> None:
        # its own address (the Host it gets is the public one, as bare)
        own = f"http://127.0.0.1:{self.request.connection.stream.socket.getsockname()[1]}"
        if what == "cookies":
            for header, _ in APP_COOKIES:
                self.add_header("Set-Cookie", header)
            self.finish("cookies")
        elif what == "absolute":
            self.set_header("Content-Location", f"{own}{PREFIX}where")
            self.set_header("Refresh", f"0; url={own}{PREFIX}later")
            self.redirect(f"{own}{PREFIX}target?x=1")
        elif what == "outside":
            self.redirect(f"{own}/login")
        else:
            self.redirect(f"{PREFIX}relative")


class PrefixedProxy(ProxyMixin, websocket.WebSocketHandler):
    """The launcher's proxying under a server prefix, without its login checks."""

    def initialize(self, port: int) -> None:
        self._port = port

    @property
    def app_port(self) -> int:  # type: ignore[override]
        return self._port

    @property
    def proxy_prefix(self) -> str:
        return PREFIX

    app_token = ""

    def note_activity(self) -> None:
        pass

    async def get(self, *args: str) -> None:
        await self.proxy_http()


@pytest.fixture
async def front() -> AsyncIterator[tuple[str, int]]:
    upstream, app_port = serve(web.Application([(PREFIX + r"(.*)", TossingApp)]))
    proxy, port = serve(web.Application([(r"/.*", PrefixedProxy, {"port": app_port})]))
    yield f"http://127.0.0.1:{port}", app_port
    proxy.stop()
    upstream.stop()


async def get(url: str):
    return await AsyncHTTPClient().fetch(
        HTTPRequest(url, follow_redirects=False), raise_error=False
    )


async def test_only_the_apps_own_cookies_pass(front, caplog) -> None:
    base, _ = front
    with caplog.at_level(logging.WARNING, logger="hub_viz.launcher"):
        r = await get(f"{base}{PREFIX}cookies")
    assert r.code == 200
    sent = r.headers.get_list("Set-Cookie")
    assert sent == [header for header, ok in APP_COOKIES if ok]
    dropped = [m for m in caplog.messages if m.startswith("Dropped a cookie")]
    assert len(dropped) == sum(not ok for _, ok in APP_COOKIES)
    assert "PLANTED" not in caplog.text  # names and reasons only, never values
    assert any("jupyterhub-session-id" in m and "hub" in m for m in dropped)
    assert any("parent" in m and "Domain" in m for m in dropped)
    assert any("everywhere" in m and "outside" in m for m in dropped)


async def test_a_redirect_never_shows_the_apps_address(front) -> None:
    base, app_port = front
    r = await get(f"{base}{PREFIX}absolute")
    assert r.code == 302
    assert r.headers["Location"] == f"{PREFIX}target?x=1"
    assert r.headers["Content-Location"] == f"{PREFIX}where"
    assert r.headers["Refresh"] == f"0; url={PREFIX}later"
    assert str(app_port) not in str(r.headers)
    outside = await get(f"{base}{PREFIX}outside")
    assert outside.headers["Location"] == f"{PREFIX}login"
    relative = await get(f"{base}{PREFIX}relative")
    assert relative.headers["Location"] == f"{PREFIX}relative"
