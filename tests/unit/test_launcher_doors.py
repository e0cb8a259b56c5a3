"""Where the launcher sends a dashboard URL opened as a page, and where a grant lands."""

from __future__ import annotations

import pytest

from hub_viz.launcher.app import full_window_url, inside_prefix, is_top_level

pytestmark = pytest.mark.unit

OPEN = "http://hub-viz--service.hub.localhost:8000/services/hub-viz/open/alice/sales"
PREFIX = "/user/alice/sales/"


@pytest.mark.parametrize(
    ("headers", "top"),
    [
        ({"Sec-Fetch-Dest": "document"}, True),
        ({"Sec-Fetch-Dest": " Document "}, True),
        ({"Sec-Fetch-Dest": "iframe"}, False),
        ({"Sec-Fetch-Dest": "empty"}, False),
        ({"Sec-Fetch-Dest": "websocket"}, False),
        ({}, False),  # no Fetch Metadata: served (and, with an open page, counted as nothing)
    ],
)
def test_only_a_tabs_page_load_is_top_level(headers, top):
    class Request:
        pass

    request = Request()
    request.headers = headers
    assert is_top_level(request) is top


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (PREFIX, f"{OPEN}?chrome=0"),
        ("/user/alice/sales", f"{OPEN}?chrome=0"),
        (PREFIX + "app2", f"{OPEN}?chrome=0&path=app2"),
        (PREFIX + "page?x=1&y=%2F", f"{OPEN}?chrome=0&path=page%3Fx%3D1%26y%3D%252F"),
        ("/user/bob/other/", f"{OPEN}?chrome=0"),
    ],
)
def test_the_full_window_keeps_the_page_asked_for(uri, expected):
    assert full_window_url(OPEN, PREFIX, uri) == expected


def test_an_open_url_with_a_query_gets_the_full_window_added():
    assert full_window_url(OPEN + "?a=1", PREFIX, PREFIX) == f"{OPEN}?a=1&chrome=0"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", PREFIX),
        ("app2", PREFIX + "app2"),
        ("page?x=1", PREFIX + "page?x=1"),
        ("/elsewhere", PREFIX),
        ("//evil.example/", PREFIX),
        ("\\\\evil.example", PREFIX),
        ("a\\b", PREFIX),
        ("a\r\nSet-Cookie: x=1", PREFIX),
    ],
)
def test_a_grant_lands_only_below_the_prefix(path, expected):
    assert inside_prefix(PREFIX, path) == expected
