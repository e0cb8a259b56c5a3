"""The launcher's pure header helpers: what the app sees of a viewer's request."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from hub_viz.launcher.proxy import (
    HOP_BY_HOP,
    WEBSOCKET_HANDSHAKE,
    filter_cookie_header,
    is_hub_cookie,
    same_origin,
    upstream_headers,
    viewer_address_and_scheme,
    without_frame_ancestors,
)

pytestmark = pytest.mark.unit

# What the launcher knows of the viewer's request besides its headers.
PUBLIC = {"host": "hub.example.com", "protocol": "https", "remote_ip": "203.0.113.7"}


# -- cookies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1; b=2", "a=1; b=2"),
        ("a=1;b=2", "a=1; b=2"),
        ("jupyterhub-session-id=abc", ""),
        ("jupyterhub-hub-login=abc; jupyterhub-user-alice=def", ""),
        ("a=1; jupyterhub-session-id=x; b=2", "a=1; b=2"),
        ("__Host-jupyterhub-session-id=x; c=3", "c=3"),
        ("_xsrf=2|abc|def; d=4", "d=4"),
        ("_xsrf_token=1; _xsrfx=2; e=5", "e=5"),
        ('jupyterhub-user-alice="quoted value"; f=6', "f=6"),
        ('g="quoted value"', 'g="quoted value"'),
        ("session=s1; _streamlit_xsrf=t; theme=dark", "session=s1; _streamlit_xsrf=t; theme=dark"),
        # Only the prefixes: an app cookie that merely mentions jupyterhub stays.
        ("my-jupyterhub-pref=1", "my-jupyterhub-pref=1"),
        ("", ""),
    ],
)
def test_filter_cookie_header(header: str, expected: str) -> None:
    assert filter_cookie_header(header) == expected


@pytest.mark.parametrize(
    "garbage",
    ["\x00\x01", "===", ";;;", '"', "{}[]", "a b c", "no equals here"],
)
def test_filter_cookie_header_garbage_is_empty(garbage: str) -> None:
    assert filter_cookie_header(garbage) == ""


def test_filter_cookie_header_keeps_valid_pairs_among_junk() -> None:
    assert filter_cookie_header("a=1; b; jupyterhub-x=SECRET; {}=2; c=3") == "a=1; c=3"


@pytest.mark.parametrize(
    "header",
    [
        'a="x; jupyterhub-session-id=SECRET; b=y"',
        'a="x; _xsrf=SECRET; __Host-jupyterhub-user-alice=SECRET; b=y"',
    ],
)
def test_hub_cookies_cannot_be_smuggled_in_a_quoted_value(header: str) -> None:
    out = filter_cookie_header(header)
    assert "SECRET" not in out
    assert "jupyterhub-" not in out
    assert "_xsrf" not in out


@pytest.mark.parametrize(
    ("name", "hub"),
    [
        ("jupyterhub-session-id", True),
        ("jupyterhub-hub-login", True),
        ("jupyterhub-user-alice", True),
        ("__Host-jupyterhub-session-id", True),
        ("_xsrf", True),
        ("_xsrf-other", True),
        ("xsrf", False),
        ("jupyterhub", False),
        ("session", False),
        ("__Host-app", False),
    ],
)
def test_is_hub_cookie(name: str, hub: bool) -> None:
    assert is_hub_cookie(name) is hub


# -- origins ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("https://hub.example.com", "hub.example.com", True),
        ("https://HUB.Example.com", "hub.example.com", True),
        ("https://hub.example.com", "HUB.EXAMPLE.COM", True),
        ("http://hub.example.com:8000/user/a/x/?q=1", "hub.example.com:8000", True),
        ("https://hub.example.com:8443", "hub.example.com", False),
        ("https://hub.example.com", "hub.example.com:8443", False),
        ("https://evil.example.org", "hub.example.com", False),
        ("https://hub.example.com.evil.org", "hub.example.com", False),
        ("https://hub.example.com@evil.org/", "hub.example.com", False),
        ("null", "hub.example.com", False),
        ("", "hub.example.com", False),
    ],
)
def test_same_origin(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same


# -- upstream_headers ---------------------------------------------------------


def viewer_request() -> HTTPHeaders:
    h = HTTPHeaders()
    h.add("Host", "hub.example.com")
    h.add("Authorization", "token viewer-hub-token")
    h.add("Cookie", "jupyterhub-session-id=hub1; app_session=a1")
    h.add("Cookie", "_xsrf=x; theme=dark")
    h.add("Origin", "https://hub.example.com")
    h.add("Referer", "https://hub.example.com/user/a/sales/?tab=2#top")
    h.add("Connection", "keep-alive, Upgrade")
    h.add("Keep-Alive", "timeout=5")
    h.add("Upgrade", "websocket")
    h.add("Transfer-Encoding", "chunked")
    h.add("TE", "trailers")
    h.add("Trailer", "X-Checksum")
    h.add("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0")
    h.add("Proxy-Authenticate", "Basic")
    h.add("Accept", "text/html")
    h.add("Accept-Language", "fr")
    h.add("X-Custom", "one")
    h.add("X-Custom", "two")
    h.add("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
    h.add("Sec-WebSocket-Protocol", "bokeh, token")
    return h


def test_upstream_headers_drop_hop_by_hop() -> None:
    out = upstream_headers(viewer_request(), **PUBLIC)
    names = {name.lower() for name, _ in out.get_all()}
    assert not names & HOP_BY_HOP
    assert "proxy-authorization" not in names


def test_upstream_headers_keep_the_public_host_and_drop_credentials() -> None:
    out = upstream_headers(viewer_request(), **PUBLIC)
    assert out.get_list("Host") == ["hub.example.com"]
    assert "Authorization" not in out
    assert out.get_list("Cookie") == ["app_session=a1; theme=dark"]
    flat = repr(list(out.get_all()))
    for secret in ("viewer-hub-token", "hub1", "jupyterhub-", "_xsrf"):
        assert secret not in flat


def test_upstream_headers_add_app_token_only_when_given() -> None:
    with_token = upstream_headers(viewer_request(), **PUBLIC, app_token="app-secret")
    assert with_token.get_list("Authorization") == ["token app-secret"]
    without = upstream_headers(viewer_request(), **PUBLIC, app_token="")
    assert "Authorization" not in without


def test_upstream_headers_keep_origin_and_referer() -> None:
    """The app sees the viewer's Origin beside the public Host, as it would bare."""
    out = upstream_headers(viewer_request(), **PUBLIC)
    assert out.get_list("Origin") == ["https://hub.example.com"]
    assert out.get_list("Referer") == ["https://hub.example.com/user/a/sales/?tab=2#top"]


def test_upstream_headers_keep_caching_headers() -> None:
    h = viewer_request()
    h.add("If-None-Match", '"abc"')
    h.add("If-Modified-Since", "Sat, 05 Dec 2026 10:00:00 GMT")
    h.add("Cache-Control", "max-age=0")
    out = upstream_headers(h, **PUBLIC)
    assert out.get_list("If-None-Match") == ['"abc"']
    assert out.get_list("If-Modified-Since") == ["Sat, 05 Dec 2026 10:00:00 GMT"]
    assert out.get_list("Cache-Control") == ["max-age=0"]


FORGED = [
    ("X-Forwarded-For", "10.9.9.9"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Host", "evil.example.org"),
    ("X-Forwarded-Port", "1"),
    ("X-Forwarded-Prefix", "/evil/"),
    ("X-Forwarded-Ssl", "on"),
    ("x-forwarded-scheme", "x"),
    ("Forwarded", "for=10.9.9.9;host=evil.example.org;proto=http"),
    ("X-Real-IP", "10.9.9.9"),
    ("X-Scheme", "http"),
    ("Front-End-Https", "on"),
    ("X-Original-Host", "evil.example.org"),
]


def test_upstream_headers_overwrite_every_forwarding_header_the_viewer_sent() -> None:
    h = viewer_request()
    for name, value in FORGED:
        h.add(name, value)
    out = upstream_headers(h, **PUBLIC)
    assert out.get_list("X-Forwarded-For") == ["203.0.113.7"]
    assert out.get_list("X-Forwarded-Proto") == ["https"]
    assert out.get_list("X-Forwarded-Host") == ["hub.example.com"]
    sent = list(out.get_all())
    for name, value in FORGED:
        assert (name.title(), value) not in [(n.title(), v) for n, v in sent], name
    assert "10.9.9.9" not in repr(sent) and "evil" not in repr(sent)
    for name in (
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "Forwarded",
        "X-Real-IP",
        "X-Scheme",
        "X-Forwarded-Ssl",
        "Front-End-Https",
        "X-Original-Host",
    ):
        assert name not in out, name


def test_upstream_headers_keep_end_to_end_headers() -> None:
    out = upstream_headers(viewer_request(), **PUBLIC)
    assert out.get_list("Accept") == ["text/html"]
    assert out.get_list("Accept-Language") == ["fr"]
    assert out.get_list("X-Custom") == ["one", "two"]
    assert out.get_list("Sec-WebSocket-Key") == ["dGhlIHNhbXBsZSBub25jZQ=="]


def test_upstream_headers_drop_extra_names_case_insensitively() -> None:
    out = upstream_headers(viewer_request(), **PUBLIC, drop=WEBSOCKET_HANDSHAKE)
    assert "Sec-WebSocket-Key" not in out
    assert "Sec-WebSocket-Protocol" not in out
    out = upstream_headers(viewer_request(), **PUBLIC, drop=["x-CUSTOM"])
    assert "X-Custom" not in out
    assert out.get_list("Accept") == ["text/html"]


def test_upstream_headers_without_app_cookies_send_no_cookie() -> None:
    h = HTTPHeaders()
    h.add("Cookie", "jupyterhub-session-id=hub1; _xsrf=x")
    h.add("Host", "hub.example.com")
    out = upstream_headers(h, **PUBLIC)
    assert "Cookie" not in out
    assert out["Host"] == "hub.example.com"


def test_upstream_headers_leave_input_untouched() -> None:
    request = viewer_request()
    before = list(request.get_all())
    upstream_headers(request, **PUBLIC, app_token="t", drop=WEBSOCKET_HANDSHAKE)
    assert list(request.get_all()) == before


@pytest.mark.parametrize(
    ("policy", "kept"),
    [
        ("frame-ancestors 'self'", ""),
        ("frame-ancestors 'self'; report-uri /r", "report-uri /r"),
        (
            "default-src 'self'; FRAME-ANCESTORS 'none' ; img-src data:",
            "default-src 'self'; img-src data:",
        ),
        ("script-src 'self'", "script-src 'self'"),
    ],
)
def test_an_apps_frame_ancestors_gives_way_to_the_launchers(policy: str, kept: str) -> None:
    assert without_frame_ancestors(policy) == kept


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ({}, ("10.0.0.2", "http")),  # no proxy in front: the connection's own
        (
            {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"},
            ("203.0.113.7", "https"),
        ),
        # the hub's proxy appends what it saw: the viewer's own entries before it do not count
        (
            {"X-Forwarded-For": "10.9.9.9, 203.0.113.7", "X-Forwarded-Proto": "https,http"},
            ("203.0.113.7", "http"),
        ),
        # headers the proxy passes untouched count for nothing
        (
            {
                "X-Forwarded-For": "203.0.113.7",
                "X-Real-IP": "10.9.9.9",
                "X-Scheme": "https",
                "X-Forwarded-Proto": "http",
            },
            ("203.0.113.7", "http"),
        ),
        (
            {"X-Forwarded-For": "not-an-address", "X-Forwarded-Proto": "gopher"},
            ("10.0.0.2", "http"),
        ),
    ],
)
def test_the_viewer_address_and_scheme_are_the_hub_proxys(sent: dict, expected: tuple) -> None:
    h = HTTPHeaders()
    for name, value in sent.items():
        h.add(name, value)
    assert viewer_address_and_scheme(h, "10.0.0.2", "http") == expected
