"""The hub's request log keeps the service's routine listing of servers at DEBUG."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from hub_viz import hublog

pytestmark = pytest.mark.unit


class Handler:
    def __init__(self, uri: str, status: int = 200, method: str = "GET") -> None:
        self.request = HTTPServerRequest(method=method, uri=uri, headers=HTTPHeaders())
        self.status = status

    def get_status(self) -> int:
        return self.status


POLL = "/hub/api/users?state=active&offset=0&limit=200&include_stopped_servers=0"


@pytest.mark.parametrize(
    ("uri", "status", "method", "routine"),
    [
        (POLL, 200, "GET", True),
        ("/prefix/hub/api/users/?state=active", 200, "GET", True),
        ("/hub/api/users?state=ready", 200, "GET", True),  # the idle culler's
        (POLL, 403, "GET", False),  # a refusal is worth reading
        ("/hub/api/users", 200, "GET", False),  # an admin's listing
        ("/hub/api/users/ada?state=active", 200, "GET", False),
        ("/hub/api/users?offset=0", 200, "GET", False),
        (POLL, 200, "POST", False),
    ],
)
def test_only_the_services_successful_listing_is_routine(
    uri: str, status: int, method: str, routine: bool
) -> None:
    assert hublog.is_routine_poll(Handler(uri, status, method)) is routine


def test_routine_polls_log_at_debug_and_the_rest_as_the_hub_does(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    passed: list[Any] = []
    monkeypatch.setattr(hublog, "hub_log_request", passed.append)
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        hublog.log_request(Handler(POLL))
    assert caplog.records == [] and passed == []
    with caplog.at_level(logging.DEBUG, logger="tornado.access"):
        hublog.log_request(Handler(POLL))
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]
    assert "state=active" in caplog.records[0].getMessage()
    other = Handler("/hub/api/users/ada")
    hublog.log_request(other)
    assert passed == [other]


def test_configure_sets_it_and_keeps_the_operators_settings() -> None:
    from traitlets.config import Config

    from hub_viz.config import configure

    c = Config()
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
    configure(c, state_dir="/srv/hub")
    assert c.JupyterHub.tornado_settings == {
        "slow_spawn_timeout": 0,
        "log_function": hublog.log_request,
    }
    c = Config()
    c.JupyterHub.tornado_settings = {"log_function": print}
    configure(c, state_dir="/srv/hub")
    assert c.JupyterHub.tornado_settings["log_function"] is print
