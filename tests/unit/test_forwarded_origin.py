"""The launcher's view of a request's scheme and address: configuration first, then the
hub proxy's own entries; never a header a viewer sent (``X-Scheme``, an earlier
``X-Forwarded-Proto``, ``X-Real-IP``). The viewer cookie's name and ``Secure`` follow it."""

from __future__ import annotations

import json
import secrets

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient

from hub_viz.launcher.forwarded import TrustedOrigin, configured_scheme
from hub_viz.launcher.grants import COOKIE_NAME, GrantKeeper, host_cookie_name
from hub_viz.launcher.ownhost import LauncherApplication

from ..loopback import serve

pytestmark = pytest.mark.unit

PREFIX = "/user/alice/sales/"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, ""),
        ({"HUB_VIZ_PUBLIC_URL": "https://alice--sales.hub.example/user/alice/sales/"}, "https"),
        ({"JUPYTERHUB_PUBLIC_URL": "https://hub.example/user/alice/sales/"}, "https"),
        (
            {"JUPYTERHUB_PUBLIC_URL": "", "JUPYTERHUB_PUBLIC_HUB_URL": "http://hub.example/hub/"},
            "http",
        ),
        ({"HUB_VIZ_OPEN_URL": "https://hub.example/services/hub-viz/open/a/b"}, "https"),
        ({"HUB_VIZ_OPEN_URL": "/services/hub-viz/open/a/b"}, ""),  # a path names no scheme
        ({"HUB_VIZ_PUBLIC_URL": "ftp://x/", "HUB_VIZ_OPEN_URL": "http://hub/open"}, "http"),
    ],
)
def test_the_public_scheme_comes_from_the_configured_urls(env: dict, expected: str) -> None:
    assert configured_scheme(env) == expected


class Enter(web.RequestHandler):
    """As ``_hub_viz/enter`` does after a grant: the viewer cookie; and what was seen."""

    def get(self) -> None:
        self.settings["keeper"].set_cookie(self, "bob")
        self.finish({"protocol": self.request.protocol, "ip": self.request.remote_ip})


async def enter(scheme: str, headers: dict[str, str]) -> tuple[str, dict]:
    app = LauncherApplication(
        [(PREFIX + "enter", Enter)],
        origin=TrustedOrigin(scheme),
        keeper=GrantKeeper("", PREFIX, "alice", "sales"),
        cookie_secret=secrets.token_bytes(32),
    )
    server, port = serve(app)  # like the launcher: no xheaders
    try:
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{port}{PREFIX}enter", headers=headers
        )
    finally:
        server.stop()
    return response.headers["Set-Cookie"], json.loads(response.body)


FORGED = {"X-Scheme": "http", "X-Real-IP": "198.51.100.9"}


async def test_on_a_configured_https_hub_a_viewer_cannot_talk_the_cookie_out_of_https() -> None:
    cookie, seen = await enter("https", {**FORGED, "X-Forwarded-Proto": "http"})
    assert cookie.startswith(host_cookie_name(PREFIX) + "=")
    assert "; Secure" in cookie and "Path=/;" in cookie
    assert seen["protocol"] == "https"


async def test_on_a_configured_http_hub_a_claimed_https_changes_nothing() -> None:
    cookie, seen = await enter(
        "http", {"X-Scheme": "https", "X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}
    )
    assert cookie.startswith(COOKIE_NAME + "=") and "Secure" not in cookie
    assert seen["protocol"] == "http"


@pytest.mark.parametrize(
    "proto, expected",
    [
        ("http, https", "https"),  # the viewer's http first, the proxy's https last
        ("https, http", "http"),
        ("", "http"),  # no proxy entry: the connection's own
    ],
)
async def test_without_configuration_only_the_proxys_entry_counts(proto: str, expected: str):
    headers = {**FORGED, **({"X-Forwarded-Proto": proto} if proto else {})}
    cookie, seen = await enter("", headers)
    assert seen["protocol"] == expected
    name = host_cookie_name(PREFIX) if expected == "https" else COOKIE_NAME
    assert cookie.startswith(name + "=")


async def test_the_address_is_the_proxys_last_hop_never_x_real_ip() -> None:
    _, seen = await enter("https", {**FORGED, "X-Forwarded-For": "10.9.9.9, 203.0.113.7"})
    assert seen["ip"] == "203.0.113.7"
    _, seen = await enter("https", FORGED)
    assert seen["ip"] == "127.0.0.1"
