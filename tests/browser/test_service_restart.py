"""The open page rides out a restart of the dashboards service.

A real hub on the isolated layout; the service is killed (SIGKILL) and the hub starts
it again on its own. A viewer who opens a dashboard meanwhile sees "reconnecting"
instead of the proxy's bare 503, and the dashboard opens by itself once the service is
back: whether the page itself could not be loaded (the proxy's error page, rendered by
the hub, reconnects) or the page was loaded and its start request met the proxy's 503
(the page asks again, with the same login: the service's cookie secret is kept).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
import requests

from ..conftest import Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES
from ..hub.test_faults import dead, service_process
from .test_publish import log_in

pytestmark = pytest.mark.browser

OWNER, VIEWER = "sr-owner", "sr-viewer"
TEXT = EXAMPLES["dash-example"][1]
RESTART_S = 90  # the hub notices a managed service's exit and starts it again

HIDDEN_TAB = """
Object.defineProperty(document, "visibilityState", {get: () => window.__tabState || "hidden",
                                                    configurable: true});
"""
SHOW_TAB = """
window.__tabState = "visible";
document.dispatchEvent(new Event("visibilitychange"));
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("service-restart-hub"),
        isolated=True,
        configure_kwargs={"extra_service_config": {"thumbnails": False}},
    )
    for name in (OWNER, VIEWER):
        running.ensure_user(name)
    for slug in ("sr-one", "sr-two"):
        r = running.svc(
            "POST",
            "dashboards",
            OWNER,
            json={
                "title": f"Restart {slug}",
                "slug": slug,
                "entry": "dash/app.py",
                "visibility": "users",
                "share_users": [VIEWER],
                "mode": "per-viewer",
            },
        )
        assert r.status_code == 201, r.text
    yield running
    stop_hub(running)


def service_up(hub: Hub) -> bool:
    try:
        return requests.get(f"{hub.service_url}api/openapi.yaml", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def kill_service(hub: Hub) -> None:
    assert service_up(hub)
    service = service_process(hub)
    service.send_signal(signal.SIGKILL)
    wait_until(lambda: dead(service), timeout=10, what="the service to die")
    assert not service_up(hub)


def test_a_page_loaded_while_the_service_is_down_reconnects_and_opens(hub, browser):
    context, page = log_in(hub, browser, VIEWER)
    kill_service(hub)
    open_url = f"{hub.service_url}open/{OWNER}/sr-one"
    # what the page replaces: the proxy's 503, rendered by the hub
    assert requests.get(open_url, timeout=30).status_code == 503

    page.goto(open_url)
    status = page.locator("#hub-viz-reconnect-message")
    status.wait_for()
    assert "The dashboards service is restarting." in status.inner_text()
    assert "Reconnecting" in status.inner_text()
    assert page.locator("#hub-viz-hub-message").is_hidden()

    # nobody touches the page: it reloads once the service is back and opens the dashboard
    page.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(
        timeout=(RESTART_S + 120) * 1000
    )
    assert service_up(hub)
    assert page.url == open_url
    context.close()


def test_a_loaded_page_whose_start_meets_the_restart_asks_again(hub, browser):
    wait_until(lambda: service_up(hub), timeout=RESTART_S, what="the service to be up")
    context, page = log_in(hub, browser, VIEWER)
    context.add_init_script(HIDDEN_TAB)
    page.goto(f"{hub.service_url}open/{OWNER}/sr-two")
    # a background tab waits before it starts anything: the service dies meanwhile
    page.locator("#progress-message", has_text="Waiting until this tab is shown").wait_for()
    kill_service(hub)

    page.evaluate(SHOW_TAB)
    page.locator("#progress-log li", has_text="Reconnecting to the dashboards service").wait_for()
    assert page.locator("#open-failed").is_hidden()

    page.frame_locator("#dashboard-frame").get_by_text(TEXT).wait_for(
        timeout=(RESTART_S + 120) * 1000
    )
    assert page.locator("#open-failed").is_hidden()
    # one start for the viewer, not one per attempt
    servers = hub.api("GET", f"/users/{VIEWER}").json()["servers"]
    assert len([name for name in servers if name.startswith("sr-two")]) == 1, servers
    context.close()
