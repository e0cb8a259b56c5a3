"""The launcher's viewer cookie: host-only, ``__Host-`` on HTTPS, and not to be tossed.

A tornado app on loopback uses the launcher's :class:`GrantKeeper` the way
the launcher does: one route sets the cookie (as ``_hub_viz/enter`` does after
a grant), one says who the cookie names. HTTPS is what the front proxy tells
the launcher (``X-Forwarded-Proto``). Cookie tossing is a sibling host setting
a cookie of the same name on the parent domain, so that the browser sends two:
the forged one must never count, and two valid ones that disagree admit nobody.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import pytest
from tornado import httpserver, netutil, web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from hub_viz.launcher.grants import COOKIE_NAME, GrantKeeper, host_cookie_name

pytestmark = pytest.mark.unit

PREFIX = "/user/alice/sales/"


class Enter(web.RequestHandler):
    def get(self) -> None:
        keeper: GrantKeeper = self.settings["keeper"]
        keeper.set_cookie(
            self,
            self.get_query_argument("viewer"),
            embed=self.get_query_argument("embed", "") == "1",
            page=self.get_query_argument("page", "") == "1",
        )
        self.finish("in")


class Who(web.RequestHandler):
    def get(self) -> None:
        viewer = self.settings["keeper"].viewer_from_cookie(self)
        if viewer is None:
            raise web.HTTPError(401)
        self.finish({"name": viewer["name"]})

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.finish({"status": status_code, "message": getattr(exc, "log_message", "")})


class Page(web.RequestHandler):
    def get(self) -> None:
        self.finish({"page": self.settings["keeper"].page_cookie(self)})


def launcher_app(prefix: str = PREFIX, secret: bytes | None = None) -> web.Application:
    return web.Application(
        [(prefix + "enter", Enter), (prefix + "who", Who), (prefix + "page", Page)],
        keeper=GrantKeeper("", prefix, "alice", "sales"),
        cookie_secret=secret or secrets.token_bytes(32),
    )


@pytest.fixture
async def launcher() -> AsyncIterator[tuple[str, str]]:
    """Two servers' launchers (this one and another of alice's), like the launcher: xheaders."""
    servers, urls = [], []
    for app in (launcher_app(), launcher_app("/user/alice/other/")):
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = httpserver.HTTPServer(app, xheaders=True)
        server.add_sockets(sockets)
        servers.append(server)
        urls.append(f"http://127.0.0.1:{sockets[0].getsockname()[1]}")
    yield urls[0], urls[1]
    for server in servers:
        server.stop()


async def fetch(url: str, https: bool = False, cookie: str = "") -> HTTPResponse:
    headers = {"X-Forwarded-Proto": "https"} if https else {}
    if cookie:
        headers["Cookie"] = cookie
    return await AsyncHTTPClient().fetch(HTTPRequest(url, headers=headers), raise_error=False)


def attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {attribute: value}) of a Set-Cookie header, attribute names lowercased."""
    first, *rest = set_cookie.split(";")
    name, _, value = first.strip().partition("=")
    attrs = {}
    for piece in rest:
        key, _, val = piece.strip().partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


async def enter(
    base: str, viewer: str, https: bool = False, prefix: str = PREFIX, embed: bool = False
) -> tuple[str, str, dict[str, str]]:
    r = await fetch(f"{base}{prefix}enter?viewer={viewer}&embed={int(embed)}", https)
    assert r.code == 200
    (header,) = r.headers.get_list("Set-Cookie")
    return attributes(header)


async def who(base: str, cookie: str, https: bool = False) -> tuple[int, dict]:
    r = await fetch(f"{base}{PREFIX}who", https, cookie)
    return r.code, json.loads(r.body) if r.body else {}


# -- the cookie's attributes ----------------------------------------------------------


async def test_on_https_the_cookie_is_host_prefixed_and_named_after_the_server(launcher) -> None:
    base, other = launcher
    name, _, attrs = await enter(base, "bob", https=True)
    assert name == host_cookie_name(PREFIX) and name.startswith("__Host-hub-viz-viewer-")
    assert attrs["path"] == "/" and "secure" in attrs and "httponly" in attrs
    assert "domain" not in attrs
    assert attrs["samesite"] == "Lax"
    # two servers on one host: two names, neither overwrites the other
    other_name, _, _ = await enter(other, "bob", https=True, prefix="/user/alice/other/")
    assert other_name.startswith("__Host-hub-viz-viewer-") and other_name != name


async def test_an_embeds_cookie_on_https_is_host_prefixed_too(launcher) -> None:
    base, _ = launcher
    name, _, attrs = await enter(base, "bob", https=True, embed=True)
    assert name == host_cookie_name(PREFIX)
    assert attrs["path"] == "/" and "secure" in attrs and "partitioned" in attrs
    assert attrs["samesite"] == "None" and "domain" not in attrs


async def test_on_http_the_cookie_is_host_only_on_the_servers_path(launcher) -> None:
    base, _ = launcher
    name, _, attrs = await enter(base, "bob")
    assert name == COOKIE_NAME
    assert attrs["path"] == PREFIX and "domain" not in attrs and "secure" not in attrs


async def test_the_cookie_admits_its_viewer(launcher) -> None:
    base, _ = launcher
    name, value, _ = await enter(base, "bob", https=True)
    assert await who(base, f"{name}={value}", https=True) == (200, {"name": "bob"})
    # the HTTPS cookie is not read on plain HTTP, nor a plain one on HTTPS
    assert (await who(base, f"{name}={value}"))[0] == 401
    plain_name, plain, _ = await enter(base, "bob")
    assert (await who(base, f"{plain_name}={plain}", https=True))[0] == 401


# -- tossing --------------------------------------------------------------------------


@pytest.mark.parametrize("https", [False, True])
async def test_a_tossed_cookie_of_the_same_name_changes_nothing(launcher, https: bool) -> None:
    base, _ = launcher
    name, real, _ = await enter(base, "bob", https=https)
    # forged values under the same name: garbage, and one signed by another launcher's
    # secret (a sibling dashboard's, say) naming the admin
    foreign = web.create_signed_value(
        secrets.token_bytes(32), name, json.dumps({"sub": "admin", "exp": 4e9, "embed": False})
    ).decode()
    for forged in ("x", foreign, real[:-4] + "AAAA"):
        # alone, a forged cookie admits nobody
        assert (await who(base, f"{name}={forged}", https))[0] == 401
        # beside the real one, in either order, the real one decides
        for cookie in (f"{name}={forged}; {name}={real}", f"{name}={real}; {name}={forged}"):
            assert await who(base, cookie, https) == (200, {"name": "bob"})


@pytest.mark.parametrize("https", [False, True])
async def test_two_valid_cookies_for_different_viewers_admit_nobody(launcher, https: bool) -> None:
    """An attacker tossing their own valid cookie onto the victim's browser gets refused."""
    base, _ = launcher
    name, victim, _ = await enter(base, "bob", https=https)
    _, attacker, _ = await enter(base, "mallory", https=https)
    for cookie in (f"{name}={attacker}; {name}={victim}", f"{name}={victim}; {name}={attacker}"):
        code, body = await who(base, cookie, https)
        assert code == 403 and "Two different sign-ins" in body["message"]
    # the same viewer twice (an old and a renewed cookie) is still that viewer
    _, again, _ = await enter(base, "bob", https=https)
    assert await who(base, f"{name}={victim}; {name}={again}", https) == (200, {"name": "bob"})


async def test_only_a_page_grant_s_cookie_is_served_the_page_itself(launcher):
    """The service's card capture (a ``page`` grant) loads the dashboard as a tab's page;
    every other cookie (and a forged one) still goes to the open page."""
    url, _ = launcher
    for page, expected in (("1", True), ("", False)):
        r = await fetch(f"{url}{PREFIX}enter?viewer=alice&page={page}")
        cookie = r.headers["Set-Cookie"].split(";")[0]
        assert json.loads((await fetch(f"{url}{PREFIX}who", cookie=cookie)).body) == {
            "name": "alice"
        }
        assert json.loads((await fetch(f"{url}{PREFIX}page", cookie=cookie)).body) == {
            "page": expected
        }
    forged = f"{COOKIE_NAME}=" + json.dumps({"sub": "alice", "exp": 2e9, "page": True})
    assert json.loads((await fetch(f"{url}{PREFIX}page", cookie=forged)).body) == {"page": False}
