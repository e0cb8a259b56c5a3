"""Idle shutdown on a real hub: jupyterhub-idle-culler with a 20-second timeout.

Only real use keeps a dashboard running: a crawler reading its pages and a
hidden tab polling it do not, and it is culled (stopped, not removed) with
its deployment record saying so; a keep-warm window covering now keeps
another running past the timeout. The hub copies the proxy's per-request
activity every few seconds here, as it does every five minutes in
production, so traffic through configurable-http-proxy is put to the test
as well. The culler runs with its role's four scopes and nothing more.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub_viz.config import CULLER, CULLER_SCOPES

from ..conftest import BROWSER_UA, Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

TIMEOUT, EVERY = 20, 5  # the culler's, in seconds
OWNER, VIEWER = "idle-owner", "idle-viewer"
CRAWLED, WARM = "idle-crawled", "idle-warm"
DASH = {"framework": "dash", "entry": "dash/app.py", "visibility": "all"}
DASH_MARKER = EXAMPLES["dash-example"][1]
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PAGE = {"User-Agent": BROWSER_UA, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
        "Sec-Fetch-Site": "same-origin", "Accept": "text/html,*/*;q=0.8"}
CRAWLER = {"User-Agent": GOOGLEBOT, "Accept": "text/html,*/*;q=0.8"}
HIDDEN_TAB = {"User-Agent": BROWSER_UA, "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty",
              "Sec-Fetch-Site": "same-origin", "Accept": "application/json"}

EXTRA_CONFIG = """
# copy configurable-http-proxy's per-route activity every 5 s (production: 300 s)
c.JupyterHub.last_activity_interval = 5
c.JupyterHub.load_roles.append(
    {"name": "tester-reads-services", "scopes": ["read:services", "read:roles:services"],
     "services": ["tester"]}
)
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("idle-hub"),
        extra_config=EXTRA_CONFIG,
        configure_kwargs={
            "cull_timeout": TIMEOUT,
            "cull_every": EVERY,
            "extra_service_config": {
                "reconcile_interval": 2, "keep_warm_interval": 3, "activity_interval": 2,
                "thumbnails": False,
            },
        },
    )
    for name in (OWNER, VIEWER):
        running.ensure_user(name)
    yield running
    stop_hub(running)


# -- helpers -------------------------------------------------------------------------------


def servers(hub: Hub, user: str, stopped: bool = False) -> dict[str, Any]:
    query = "?include_stopped_servers=1" if stopped else ""
    r = hub.api("GET", f"/users/{user}{query}")
    assert r.status_code == 200, r.text
    return r.json().get("servers") or {}


def running(hub: Hub, slug: str) -> bool:
    return bool(servers(hub, OWNER).get(slug, {}).get("ready"))


def open_in_browser(hub: Hub, slug: str) -> tuple[requests.Session, str]:
    """Open through the service as VIEWER, then load the page like a browser tab."""
    r = hub.svc("POST", f"dashboards/{OWNER}/{slug}/open", VIEWER)
    assert r.status_code == 200, r.text
    body = r.json()
    if body["status"] != "ready":
        events = hub.svc("GET", f"dashboards/{OWNER}/{slug}/progress", VIEWER, stream=True)
        last = [line for line in events.iter_lines(decode_unicode=True)
                if line.startswith("data:")][-1]
        assert '"ready": true' in last, last
        url = last.split('"url": "', 1)[1].split('"', 1)[0]
    else:
        url = body["url"]
    tab = requests.Session()
    page = tab.get(hub.url + url, headers=PAGE, timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert page.url == f"{hub.url}/user/{OWNER}/{slug}/", page.url
    layout = tab.get(page.url + "_dash-layout", headers=HIDDEN_TAB, timeout=60)
    assert DASH_MARKER in layout.text, layout.text[:500]
    return tab, page.url


def recent(hub: Hub, slug: str) -> list[dict[str, Any]]:
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/usage", OWNER)
    assert r.status_code == 200, r.text
    return r.json()["recent"]


# -- tests ---------------------------------------------------------------------------------


def test_crawlers_and_hidden_tabs_do_not_keep_a_dashboard_alive_but_windows_do(hub: Hub):
    for slug, extra in ((CRAWLED, {}), (WARM, {"keep_warm": [{"start": "00:00",
                                                               "end": "24:00"}]})):
        r = hub.svc("POST", "dashboards", OWNER, json={"slug": slug, "title": slug, **DASH,
                                                       **extra})
        assert r.status_code == 201, r.text
    assert hub.svc("GET", f"dashboards/{OWNER}/{WARM}", OWNER).json()["keep_warm"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00",
         "end": "24:00"}]

    warm_tab, _ = open_in_browser(hub, WARM)
    warm_opened = time.monotonic()
    tab, page_url = open_in_browser(hub, CRAWLED)

    # From now on the crawled dashboard only sees a crawler reading its pages (with the
    # viewer's cookie, so every request reaches the app) and a hidden tab polling it.
    crawler = requests.Session()
    crawler.cookies.update(tab.cookies)
    answered = 0

    def culled() -> bool:
        nonlocal answered
        if not running(hub, CRAWLED):
            return True
        page = crawler.get(page_url, headers=CRAWLER, timeout=30, allow_redirects=False)
        poll = tab.get(page_url + "_dash-layout", headers=HIDDEN_TAB, timeout=30,
                       allow_redirects=False)
        answered += page.status_code == 200 and poll.status_code == 200
        # a crawler without the cookie is sent to the open page and starts nothing
        anonymous = requests.get(page_url, headers=CRAWLER, timeout=30, allow_redirects=False)
        assert anonymous.status_code in (302, 303), anonymous.status_code
        return False

    wait_until(culled, timeout=TIMEOUT + EVERY + 60, what=f"the culler to stop {CRAWLED}",
               every=1)
    assert answered >= 5  # the traffic did reach the dashboard while it ran

    # stopped, not removed: the hub keeps the named server, the service the dashboard
    wait_until(lambda: CRAWLED not in servers(hub, OWNER), timeout=30,
               what=f"{CRAWLED} to finish stopping")
    assert CRAWLED in servers(hub, OWNER, stopped=True)
    records = wait_until(
        lambda: [d for d in recent(hub, CRAWLED) if d["stopped"]], timeout=30,
        what="the service to close the deployment record")
    assert [(d["stop_reason"], d["stopped_by"]) for d in records] == [("culled idle", "")]
    d = hub.svc("GET", f"dashboards/{OWNER}/{CRAWLED}", OWNER)
    assert d.status_code == 200 and d.json()["status"] == "stopped"

    # the kept-warm dashboard, opened just as long ago and never touched since, still runs
    time.sleep(max(0.0, warm_opened + TIMEOUT + 2 * EVERY - time.monotonic()))
    assert running(hub, WARM)
    assert [d["stopped"] for d in recent(hub, WARM)] == [None]
    warm_tab.close()

    # opening the culled dashboard again starts it again
    again, _ = open_in_browser(hub, CRAWLED)
    again.close()
    assert running(hub, CRAWLED)
    records = recent(hub, CRAWLED)
    assert [d["stopped"] is None for d in records] == [True, False]
    assert records[0]["started_by"] == VIEWER


def test_the_culler_has_exactly_its_four_scopes(hub: Hub):
    r = hub.api("GET", f"/services/{CULLER}")
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == [CULLER]
    assert r.json()["admin"] is False
    # what the live hub loaded into its database for that role
    db = hub.log.parent / "jupyterhub.sqlite"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        [(scopes,)] = conn.execute("SELECT scopes FROM roles WHERE name = ?", (CULLER,))
    assert sorted(json.loads(scopes)) == sorted(CULLER_SCOPES)
    assert set(CULLER_SCOPES) == {
        "list:users", "read:users:activity", "read:servers", "delete:servers"}
