"""A dashboard server's launcher answers only on its own host (the isolated layout)."""

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from hub_viz.launcher.ownhost import OwnHost

pytestmark = pytest.mark.unit

OWN = OwnHost("http://sales--0123abcd.hub.localhost:8000/user/alice/sales/", "alice.hub.localhost")


def request(host: str, uri: str = "/user/alice/sales/?x=1") -> HTTPServerRequest:
    return HTTPServerRequest(method="GET", uri=uri, headers=HTTPHeaders({"Host": host}))


def test_the_users_host_is_sent_to_the_servers_own() -> None:
    assert OWN.redirect_for(request("alice.hub.localhost:8000")) == (
        "http://sales--0123abcd.hub.localhost:8000/user/alice/sales/?x=1"
    )
    assert OWN.redirect_for(request("ALICE.hub.localhost:8000")) is not None
    assert OWN.redirect_for(request("sales--0123abcd.hub.localhost:8000")) is None


@pytest.mark.parametrize(
    "host",
    [
        "bob.hub.localhost:8000",  # another user's host (a stale route pointing here)
        "grades--89abcdef.hub.localhost:8000",  # another dashboard's host
        "hub.localhost:8000",  # the hub's
        "hub-viz--service.hub.localhost:8000",  # the service's
    ],
)
def test_other_hosts_of_the_hub_are_never_served(host: str) -> None:
    assert OWN.foreign(request(host))
    assert OWN.redirect_for(request(host)) is None


@pytest.mark.parametrize(
    "host",
    [
        "sales--0123abcd.hub.localhost:8000",  # its own
        "127.0.0.1:45678",
        "10.1.2.3:8888",
        "[::1]:45678",  # the hub's probe, the service
    ],
)
def test_its_own_host_and_addresses_are_served(host: str) -> None:
    assert not OWN.foreign(request(host))
