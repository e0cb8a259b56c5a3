"""The launcher's re-check of cookie viewers, against a stand-in service on loopback.

The stand-in answers like ``S api/viewer-access/<owner>/<slug>``: it checks the
server token and says yes or no per viewer; the test changes its mind to
withdraw access. Time is not measured: an interval of 0 means "always stale",
a long one "never stale".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from tornado import web

from hub_viz.launcher.access import AccessCheck, AccessUnknown
from hub_viz.service.access_api import token_servers

from ..loopback import serve

pytestmark = pytest.mark.unit

TOKEN = "server-token-of-alice-sales"


@dataclass
class Service:
    allowed: set[str] = field(default_factory=lambda: {"bob", ""})
    asked: list[str] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0


class ViewerAccess(web.RequestHandler):
    async def get(self) -> None:
        service: Service = self.settings["service"]
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            raise web.HTTPError(403)
        viewer = self.get_query_argument("viewer")
        service.asked.append(viewer)
        await asyncio.sleep(service.delay)
        if service.status != 200:
            raise web.HTTPError(service.status)
        self.finish({"allowed": viewer in service.allowed})


@pytest.fixture
async def service() -> AsyncIterator[tuple[Service, str]]:
    state = Service()
    server, port = serve(web.Application([(r"/access", ViewerAccess)], service=state))
    yield state, f"http://127.0.0.1:{port}/access"
    server.stop()


async def test_a_withdrawn_viewer_is_refused_once_the_last_yes_is_stale(service) -> None:
    state, url = service
    check = AccessCheck(url, TOKEN, interval=0)
    assert await check.allowed("bob") is True
    state.allowed.discard("bob")
    assert await check.allowed("bob") is False
    assert await check.allowed("carol") is False
    assert state.asked == ["bob", "bob", "carol"]


async def test_a_fresh_yes_is_not_asked_again(service) -> None:
    state, url = service
    check = AccessCheck(url, TOKEN, interval=3600)
    assert await check.allowed("bob") is True
    state.allowed.discard("bob")
    assert await check.allowed("bob") is True  # within the interval: trusted
    check.vouched("dave")  # a grant the service just issued counts as its yes
    assert await check.allowed("dave") is True
    assert state.asked == ["bob"]


async def test_concurrent_requests_of_one_viewer_ask_once(service) -> None:
    state, url = service
    state.delay = 0.2
    check = AccessCheck(url, TOKEN, interval=3600)
    answers = await asyncio.gather(*(check.allowed("bob") for _ in range(5)))
    assert answers == [True] * 5 and state.asked == ["bob"]


@pytest.mark.parametrize("status", [403, 500, 502])
async def test_no_answer_is_never_a_yes(service, status: int) -> None:
    state, url = service
    state.status = status
    check = AccessCheck(url, TOKEN, interval=0)
    with pytest.raises(AccessUnknown):
        await check.allowed("bob")
    state.status = 200  # the next request asks again
    assert await check.allowed("bob") is True


async def test_an_unreachable_service_is_no_answer() -> None:
    check = AccessCheck("http://127.0.0.1:9/access", TOKEN, interval=0)
    with pytest.raises(AccessUnknown):
        await check.allowed("bob")


async def test_without_a_service_there_is_nobody_to_ask() -> None:
    assert await AccessCheck("", TOKEN).allowed("bob") is True


@pytest.mark.parametrize(
    ("model", "servers"),
    [
        # a launcher's token: JupyterHub's server role
        (
            {
                "kind": "user",
                "name": "alice",
                "scopes": ["access:servers!server=alice/sales", "users:activity!user=alice"],
            },
            {"alice/sales"},
        ),
        # a shared user's token reaches alice's server, but is not hers
        (
            {
                "kind": "user",
                "name": "bob",
                "scopes": ["access:servers!server=alice/sales", "access:servers!user=bob"],
            },
            set(),
        ),
        ({"kind": "user", "name": "alice", "scopes": ["access:servers!user=alice"]}, set()),
        (
            {"kind": "service", "name": "alice", "scopes": ["access:servers!server=alice/sales"]},
            set(),
        ),
        ({"kind": "user", "name": "alic", "scopes": ["access:servers!server=alice/sales"]}, set()),
        (None, set()),
        ({}, set()),
    ],
)
def test_token_servers(model, servers) -> None:
    assert token_servers(model) == servers
