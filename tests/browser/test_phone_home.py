"""Phone-home keeps a dashboard alive while someone looks at it, and only then.

A real hub with jupyterhub-idle-culler on a 20-second timeout; the viewer's
open page pings every 3 s. While the tab is visible and focused the
dashboard outlives the timeout several times over; once the tab is hidden
the pings stop and the culler stops it. Its embed link then starts it again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from ..conftest import BROWSER_UA, Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES
from .test_publish import log_in

pytestmark = pytest.mark.browser

TIMEOUT, EVERY = 20, 5
OWNER, VIEWER, SLUG = "ph-owner", "ph-viewer", "ph-dash"
TEXT = EXAMPLES["dash-example"][1]

HIDE_TAB = """
Object.defineProperty(document, "visibilityState", {get: () => "hidden", configurable: true});
Object.defineProperty(document, "hidden", {get: () => true, configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("phone-home-hub"),
        extra_config="c.JupyterHub.last_activity_interval = 5\n",
        isolated=True,  # the open page frames the dashboard across origins
        configure_kwargs={
            "cull_timeout": TIMEOUT,
            "cull_every": EVERY,
            "activity_interval": 2,
            "extra_service_config": {
                "reconcile_interval": 2,
                "ping_seconds": 3,
                "ping_min_interval": 1,
                "thumbnails": False,
            },
        },
    )
    for name in (OWNER, VIEWER):
        running.ensure_user(name)
    yield running
    stop_hub(running)


def running(hub: Hub) -> bool:
    server = hub.api("GET", f"/users/{OWNER}").json()["servers"].get(SLUG)
    return bool(server and server.get("ready"))


def test_visible_viewer_keeps_it_running_and_a_hidden_tab_does_not(hub, browser):
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "title": "Phone home",
            "slug": SLUG,
            "entry": "dash/app.py",
            "visibility": "public",
        },
    )
    assert r.status_code == 201, r.text
    embed = hub.svc(
        "POST",
        f"dashboards/{OWNER}/{SLUG}/embeds",
        OWNER,
        json={"origins": ["https://course.example.edu"], "anonymous": True},
    ).json()

    context, page = log_in(hub, browser, VIEWER)
    page.goto(f"{hub.service_url}open/{OWNER}/{SLUG}")
    page.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(timeout=120_000)
    page.bring_to_front()
    assert page.evaluate("document.visibilityState === 'visible' && document.hasFocus()")

    # Three culler timeouts with only the pings of a visible, focused page: still running.
    for _ in range(3 * TIMEOUT // 5):
        time.sleep(5)
        assert running(hub), "culled although the viewer was looking at it"

    # The tab goes to the background: the pings stop, the culler stops the dashboard.
    page.evaluate(HIDE_TAB)
    wait_until(lambda: not running(hub), 3 * (TIMEOUT + EVERY), "culled after the tab was hidden")
    context.close()
    usage = hub.svc("GET", f"dashboards/{OWNER}/{SLUG}/usage", OWNER).json()
    wait_until(
        lambda: (
            hub.svc("GET", f"dashboards/{OWNER}/{SLUG}/usage", OWNER).json()["recent"][0][
                "stop_reason"
            ]
            == "culled idle"
        ),
        30,
        "the deployment record says culled idle",
    )
    assert usage["deployments"] >= 1

    # The definition is kept: the embed link starts it again, without any login.
    assert requests.get(embed["url"], timeout=30).status_code == 200
    anonymous = browser.new_context(user_agent=BROWSER_UA)  # headless Chromium's own UA is a bot's
    page = anonymous.new_page()
    page.goto(embed["url"])
    page.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(timeout=120_000)
    assert running(hub)
    anonymous.close()
    assert hub.svc("DELETE", f"dashboards/{OWNER}/{SLUG}", OWNER).status_code == 204
