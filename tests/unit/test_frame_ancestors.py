"""The launcher's ``frame-ancestors``: the hub itself plus the live embed origins it reads.

A tornado app on loopback stands in for the service's
``api/embed-origins/<owner>/<slug>``; :class:`FrameAncestors` polls it the
way the launcher does. Only well-formed origins reach the header: a value
that is not one (a wildcard, a keyword, a second directive) would widen who
may frame the dashboard.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from tornado import httpserver, netutil, web

from hub_viz.launcher.grants import FrameAncestors

pytestmark = pytest.mark.unit

SELF_ONLY = "frame-ancestors 'self'"


class Origins(web.RequestHandler):
    def get(self) -> None:
        answer = self.settings["answer"]
        if isinstance(answer, int):
            raise web.HTTPError(answer)
        self.finish(answer if isinstance(answer, str) else json.dumps(answer))


@pytest.fixture
async def service() -> AsyncIterator[tuple[str, web.Application]]:
    app = web.Application([("/api/embed-origins/alice/sales", Origins)], answer={"origins": []})
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api/embed-origins/alice/sales", app
    server.stop()


async def test_only_the_hub_frames_until_the_service_answers(service) -> None:
    url, app = service
    ancestors = FrameAncestors(url)
    assert ancestors.header == SELF_ONLY
    await ancestors.refresh()  # no embed links
    assert ancestors.header == SELF_ONLY


async def test_the_live_origins_are_listed_and_follow_the_service(service) -> None:
    url, app = service
    ancestors = FrameAncestors(url)
    app.settings["answer"] = {"origins": ["https://a.example.edu", "https://b.example.edu:8443"]}
    await ancestors.refresh()
    assert ancestors.header == f"{SELF_ONLY} https://a.example.edu https://b.example.edu:8443"
    app.settings["answer"] = {"origins": ["https://b.example.edu:8443"]}  # a link revoked
    await ancestors.refresh()
    assert ancestors.header == f"{SELF_ONLY} https://b.example.edu:8443"
    app.settings["answer"] = {"origins": []}  # the last one revoked
    await ancestors.refresh()
    assert ancestors.header == SELF_ONLY


@pytest.mark.parametrize(
    "bad",
    [
        "*",
        "https:",
        "'unsafe-inline'",
        "https://*.example.edu",
        "https://a.example.edu; script-src *",
        "https://a.example.edu *",
        "javascript://a.example.edu",
        "https://a.example.edu/path",
        42,
    ],
)
async def test_what_is_not_an_origin_never_reaches_the_header(service, bad) -> None:
    url, app = service
    app.settings["answer"] = {"origins": [bad, "https://a.example.edu"]}
    ancestors = FrameAncestors(url)
    await ancestors.refresh()
    assert ancestors.header == f"{SELF_ONLY} https://a.example.edu"


@pytest.mark.parametrize("failure", [500, "not json", {"no": "origins"}])
async def test_a_failed_poll_keeps_the_last_list(service, failure) -> None:
    url, app = service
    app.settings["answer"] = {"origins": ["https://a.example.edu"]}
    ancestors = FrameAncestors(url)
    await ancestors.refresh()
    app.settings["answer"] = failure
    await ancestors.refresh()
    assert ancestors.header == f"{SELF_ONLY} https://a.example.edu"


def test_the_service_s_own_host_frames_on_the_isolated_layout() -> None:
    ancestors = FrameAncestors("", open_url="https://dash.example.org/services/hub-viz/open/")
    assert ancestors.header == f"{SELF_ONLY} https://dash.example.org"
    assert FrameAncestors("", open_url="/services/hub-viz/open/").header == SELF_ONLY
