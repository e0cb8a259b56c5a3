"""Where a browser finds the hub, the service and each user's servers."""

import pytest

from hub_viz.layout import Layout

pytestmark = pytest.mark.unit

ISOLATED = Layout("https://hub.example.edu", "hub-viz")


@pytest.mark.parametrize(
    ("user", "host"),
    [
        ("alice", "alice.hub.example.edu"),
        ("Pat+Viz@example.org", "u-patvizex--"),  # stripped and hashed, as the hub does
        ("hub-viz-pool", "hub-viz-pool.hub.example.edu"),
    ],
)
def test_user_hosts_follow_the_hubs_idna_hook(user: str, host: str) -> None:
    got = ISOLATED.user_host(user)
    assert got.startswith(host) and got.endswith(".hub.example.edu")
    assert all(c.isalnum() or c in "-." for c in got)


def test_isolated_urls_are_absolute_and_on_distinct_origins() -> None:
    assert ISOLATED.isolated
    assert ISOLATED.hub_origin == "https://hub.example.edu"
    assert ISOLATED.service_origin == "https://hub-viz--service.hub.example.edu"
    assert ISOLATED.service_url == "https://hub-viz--service.hub.example.edu/services/hub-viz/"
    url = ISOLATED.server_url("alice", "sales")
    assert url.startswith("https://sales--") and url.endswith(".hub.example.edu/user/alice/sales/")
    origins = {
        ISOLATED.hub_origin,
        ISOLATED.service_origin,
        ISOLATED.user_origin("alice"),
        ISOLATED.user_origin("bob"),
        *(f"{ISOLATED.server_host(u, s)}" for u in ("alice", "bob") for s in ("sales", "grades")),
    }
    assert len(origins) == 8


def test_every_named_server_has_a_host_of_its_own() -> None:
    # the default server stays on its user's host; named servers never share one
    assert ISOLATED.server_host("alice", "") == ISOLATED.user_host("alice")
    hosts = {
        ISOLATED.server_host(u, s)
        for u in ("alice", "bob", "u", "hub")
        for s in ("sales", "service", "patvizex", "a")
    }
    assert len(hosts) == 16
    labels = {h.split(".")[0] for h in hosts}
    # never a user's label (plain, or hashed with 7 hex) nor a service's
    assert not labels & {
        ISOLATED.user_host(n).split(".")[0]
        for n in ("alice", "sales", "Pat+Viz@example.org", "service")
    }
    assert all(len(label) <= 63 and not label.endswith("--service") for label in labels)
    assert ISOLATED.server_proxy_spec("alice", "sales") == (
        ISOLATED.server_host("alice", "sales") + "/user/alice/sales/"
    )


def test_ports_are_kept() -> None:
    layout = Layout("http://hub.localhost:8000")
    assert layout.server_url("bob", "") == "http://bob.hub.localhost:8000/user/bob/"
    assert layout.server_url("bob", "x").startswith("http://x--")
    assert layout.server_url("bob", "x").endswith(".hub.localhost:8000/user/bob/x/")
    assert layout.user_host("bob") == "bob.hub.localhost"


def test_path_based_layout_gives_paths() -> None:
    layout = Layout("", "hub-viz")
    assert not layout.isolated
    assert layout.hub_origin == layout.service_origin == layout.user_origin("a") == ""
    assert layout.user_host("a") == layout.server_host("a", "s") == ""
    assert layout.server_proxy_spec("a", "s") == "/user/a/s/"
    assert layout.service_url == "/services/hub-viz/"
    assert layout.server_url("pat+viz@example.org", "s") == "/user/pat%2Bviz@example.org/s/"
