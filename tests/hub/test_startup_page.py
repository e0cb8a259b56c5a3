"""With ``wait_for_app`` off, viewers land on the launcher's start-up page."""

from __future__ import annotations

import time

import pytest
import requests

from ..conftest import start_hub, stop_hub

pytestmark = pytest.mark.hub

SLOW_CUSTOM = {
    "framework": "custom",
    "entry": "custom/slow_start.py",
    "command": ["{python}", "slow_start.py", "{port}", "{prefix}"],
}


@pytest.fixture(scope="module")
def eager_hub(tmp_path_factory):
    running = start_hub(
        tmp_path_factory.mktemp("eager-hub"),
        isolated=True,
        extra_config="\nc.DashboardLocalSpawner.wait_for_app = False\n",
    )
    yield running
    stop_hub(running)


def test_startup_page_then_the_app(eager_hub):
    hub = eager_hub
    assert hub.start("alice", "slow", SLOW_CUSTOM).status_code in (201, 202)
    assert hub.wait("alice", "slow", timeout=30).get("ready")
    session = hub.login("alice")
    base = hub.server_url("alice", "slow")

    first = session.get(base, timeout=30)
    assert first.status_code == 200
    assert "Starting the Custom command dashboard" in first.text
    assert 'id="log"' in first.text, "the owner sees the start-up log"
    assert "slow_start.py" not in first.text, "the command is never on the page"

    deadline = time.monotonic() + 30
    status = {}
    while time.monotonic() < deadline:
        status = session.get(base + "_hub_viz/status", timeout=10).json()
        if "warming up the model" in status.get("log", []):
            break
        time.sleep(0.2)
    assert "warming up the model" in status["log"]
    assert requests.get(base + "_hub_viz/status", timeout=10).status_code == 403

    deadline = time.monotonic() + 30
    page = first
    while time.monotonic() < deadline and "custom app answer" not in page.text:
        time.sleep(0.5)
        page = session.get(base + "some/path?x=1", timeout=10)
    assert page.text == "custom app answer 42 at /user/alice/slow/some/path?x=1"
    hub.stop("alice", "slow")
