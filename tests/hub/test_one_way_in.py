"""Every door to a dashboard leads to its open page, the one page that says someone looks.

On both layouts, for dashboards the service starts: a dashboard URL
loaded as a tab's page is sent to the open page's full window; a frame's
load is served; nothing the launcher serves moves the hub's last activity
(pings from the open page do); a stopped dashboard's URL leads, through the
hub's not-running and 404 pages, to the service's ``goto/``, which opens it
for a viewer who may see it and answers the same 404 as for a dashboard that
does not exist to anyone else. JupyterHub's own named-server controls are
gone from the home page, and a server with nothing to run is refused at once
with a pointer to the gallery.
"""

from __future__ import annotations

import time

import pytest
import requests

from ..conftest import BROWSER_UA, Hub, both_layouts, wait_until

pytestmark = pytest.mark.hub

hub = both_layouts()

OWNER, VIEWER, OUTSIDER = "idle-owner", "door-viewer", "door-outsider"  # a publisher
SLUG, PRIVATE = "door-dash", "door-private"
FRAME = {
    "User-Agent": BROWSER_UA,
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "iframe",
    "Sec-Fetch-Site": "same-site",
    "Accept": "text/html,*/*;q=0.8",
}
TAB = {**FRAME, "Sec-Fetch-Dest": "document", "Sec-Fetch-Site": "none"}
NO_FETCH_METADATA = {"User-Agent": BROWSER_UA, "Accept": "text/html,*/*;q=0.8"}
XHR = {
    "User-Agent": BROWSER_UA,
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Accept": "application/json",
}


@pytest.fixture(scope="module")
def published(hub: Hub) -> Hub:
    for name in (OWNER, VIEWER, OUTSIDER):
        hub.ensure_user(name)
    for slug, visibility in ((SLUG, "all"), (PRIVATE, "private")):
        r = hub.svc(
            "POST",
            "dashboards",
            OWNER,
            json={
                "slug": slug,
                "title": slug,
                "framework": "dash",
                "entry": "dash/app.py",
                "visibility": visibility,
            },
        )
        assert r.status_code == 201, r.text
    return hub


def last_activity(hub: Hub, slug: str = SLUG) -> str:
    return hub.api("GET", f"/users/{OWNER}").json()["servers"][slug]["last_activity"]


def service_prefix(hub: Hub) -> str:
    """The service's prefix as its links give it: absolute on the isolated layout."""
    return hub.open_location(OWNER, SLUG).rsplit("open/", 1)[0]


def stopped(hub: Hub, slug: str) -> None:
    r = hub.api("DELETE", f"/users/{OWNER}/servers/{slug}")
    assert r.status_code in (202, 204), r.text
    wait_until(
        lambda: slug not in hub.api("GET", f"/users/{OWNER}").json()["servers"],
        timeout=60,
        what=f"{slug} to stop",
    )
    # no wait for the service's shared "ready" (READY_SECONDS) to run out: the hub's spawner
    # told it that the server stops


def test_a_dashboard_url_opened_as_a_page_leads_to_its_full_window(published: Hub):
    hub = published
    body = hub.open_ready(OWNER, SLUG, VIEWER)
    url = hub.server_url(OWNER, SLUG)
    full_window = f"{service_prefix(hub)}open/{OWNER}/{SLUG}?chrome=0"
    for cookies in ({}, None):  # anonymous, and with the viewer's cookie
        tab = requests.Session()
        if cookies is None:
            assert tab.get(hub.public(body["url"]), headers=FRAME, timeout=60).status_code == 200
        r = tab.get(url, headers=TAB, timeout=30, allow_redirects=False)
        assert (r.status_code, r.headers["Location"]) == (302, full_window)
        r = tab.get(url + "some/page?x=1", headers=TAB, timeout=30, allow_redirects=False)
        assert (r.status_code, r.headers["Location"]) == (
            302,
            full_window + "&path=some%2Fpage%3Fx%3D1",
        )
    # in a frame (the open page's) the dashboard is served
    assert tab.get(url, headers=FRAME, timeout=30).status_code == 200
    # the full window: the open page without the service's bar
    page = hub.login(VIEWER).get(hub.public(full_window), timeout=30)
    assert page.status_code == 200 and "open.js" in page.text
    assert "<nav" not in page.text and "hub-viz-full" in page.text
    with_bar = hub.login(VIEWER).get(hub.public(full_window.split("?")[0]), timeout=30)
    assert "<nav" in with_bar.text and 'id="open-full"' in with_bar.text
    # the page asked for travels with the grant: the frame lands on it, and only below
    # the dashboard's prefix
    page = hub.login(VIEWER).get(hub.public(full_window + "&path=_dash-layout"), timeout=30)
    assert 'data-path="_dash-layout"' in page.text
    prefix = hub.layout.server_path(OWNER, SLUG)
    for path, landing in (("_dash-layout", prefix + "_dash-layout"), ("//evil.example/", prefix)):
        grant = hub.public(hub.open_ready(OWNER, SLUG, VIEWER)["url"])
        r = requests.get(
            grant, params={"next": path}, headers=FRAME, timeout=30, allow_redirects=False
        )
        assert (r.status_code, r.headers["Location"]) == (302, landing)


def test_nothing_the_launcher_serves_counts_as_activity_pings_do(published: Hub):
    hub = published
    body = hub.open_ready(OWNER, SLUG, VIEWER)
    tab = requests.Session()
    assert tab.get(hub.public(body["url"]), headers=FRAME, timeout=60).status_code == 200
    url = hub.server_url(OWNER, SLUG)
    time.sleep(5)  # reports of the open itself (launchers report every 2 s here)
    before = last_activity(hub)
    for _ in range(3):
        assert tab.get(url, headers=FRAME, timeout=30).status_code == 200
        assert tab.get(url, headers=NO_FETCH_METADATA, timeout=30).status_code == 200
        assert tab.get(url + "_dash-layout", headers=XHR, timeout=30).status_code == 200
    time.sleep(6)  # three of the launcher's report intervals
    assert last_activity(hub) == before
    # a ping from the open page does count
    r = hub.svc("POST", f"dashboards/{OWNER}/{SLUG}/ping", VIEWER)
    assert r.status_code == 204, r.text
    wait_until(
        lambda: last_activity(hub) > before,
        timeout=30,
        what="the ping to reach the hub's last activity",
    )


def test_a_stopped_dashboards_url_goes_to_its_open_page_or_404(published: Hub):
    hub = published
    hub.open_ready(OWNER, SLUG, VIEWER)
    hub.open_ready(OWNER, PRIVATE, OWNER)
    stopped(hub, SLUG)
    stopped(hub, PRIVATE)
    goto = f"{hub.service_url}goto/"
    linked = f"{service_prefix(hub)}goto/"  # as the hub's pages link it
    token = {"Authorization": f"token {hub.user_token(VIEWER)}", "User-Agent": BROWSER_UA}

    if hub.layout.isolated:
        # the stopped server's host has no route: the proxy's 404, rendered by the hub's
        # error page, sends everyone on (the hub answers only on its own host)
        for who in (VIEWER, OWNER):
            r = hub.login(who).get(hub.server_url(OWNER, SLUG), headers=TAB, timeout=30)
            assert r.status_code == 404 and r.url == hub.server_url(OWNER, SLUG), r.url
            assert linked in r.text and "Launch Server" not in r.text
    else:
        # the viewer (no hub scope for an "all" dashboard): the hub's 404 page sends them on
        r = hub.login(VIEWER).get(hub.server_url(OWNER, SLUG), headers=TAB, timeout=30)
        assert r.status_code == 404 and r.url == f"{hub.url}/hub/user/{OWNER}/{SLUG}/", r.url
        assert linked in r.text
        # the owner: the hub's not-running page leads to the same place, not to a spawn
        r = hub.login(OWNER).get(hub.server_url(OWNER, SLUG), headers=TAB, timeout=30)
        assert r.status_code == 424, r.status_code
        assert f'href="{linked}{OWNER}/{SLUG}/"' in r.text and "Launch Server" not in r.text
    # ... where a viewer who may see it gets its full window, which starts it once shown
    r = requests.get(f"{goto}{OWNER}/{SLUG}/", headers=token, timeout=30, allow_redirects=False)
    assert r.status_code == 302, r.text
    assert r.headers["Location"] == f"{service_prefix(hub)}open/{OWNER}/{SLUG}?chrome=0"
    assert SLUG not in hub.api("GET", f"/users/{OWNER}").json()["servers"]  # not started
    # and anyone else the same 404 as for a dashboard that does not exist
    outsider = {**token, "Authorization": f"token {hub.user_token(OUTSIDER)}"}
    answers = []
    for slug in (PRIVATE, "door-nothing"):
        r = requests.get(
            f"{goto}{OWNER}/{slug}/", headers=outsider, timeout=30, allow_redirects=False
        )
        answers.append((r.status_code, r.text.replace(slug, "<slug>")))
    assert answers[0] == answers[1] and answers[0][0] == 404, answers
    assert f"No dashboard at /user/{OWNER}/" in answers[0][1], answers
    # the owner of a server the service did not start (the hub's API): the hub's start page
    r = requests.get(
        f"{goto}{OWNER}/door-raw/",
        timeout=30,
        allow_redirects=False,
        headers={**token, "Authorization": f"token {hub.user_token(OWNER)}"},
    )
    assert (r.status_code, r.headers.get("Location")) == (
        302,
        f"{hub.layout.hub_origin}/hub/spawn/{OWNER}/door-raw",
    ), r.text
    # anonymous: log in first
    r = requests.get(
        f"{goto}{OWNER}/{SLUG}/",
        headers={"User-Agent": BROWSER_UA},
        timeout=30,
        allow_redirects=False,
    )
    location = r.headers.get("Location", "")
    assert r.status_code == 302 and ("oauth" in location or "login" in location), location


def test_the_home_page_has_no_server_controls_and_no_dashboard_is_no_server(published: Hub):
    hub = published
    home = hub.login(VIEWER).get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200
    assert "hub-viz-gallery" in home.text
    for control in ("Named Servers", "new-server-name", "Add New Server", "My Server"):
        assert control not in home.text, control
    r = hub.start(VIEWER, "homework", {})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "No dashboard is defined for server 'homework'" in message
    assert "gallery on the hub's home page" in message
    hub.stop(VIEWER, "homework")
    # a dashboard's spec travels in user_options, which the spawner reads itself
    hub.open_ready(OWNER, SLUG, VIEWER)
    assert "unhandled user_options" not in hub.log.read_text(errors="replace")


def test_the_hub_answers_on_its_own_host_only(published: Hub):
    """On a dashboard's host the hub's login page and API are not there: a dashboard's
    script could otherwise send its viewer to a hub login on the dashboard's origin."""
    hub = published
    if not hub.layout.isolated:
        pytest.skip("one origin for all on the path-based layout")
    hub.open_ready(OWNER, SLUG, VIEWER)
    dashboard = hub.server_url(OWNER, SLUG)
    origin = dashboard.split("/user/")[0]
    for path in (
        "/hub/login",
        "/hub/api/",
        "/hub/api/user",
        "/hub/home",
        "/services/hub-viz/api/dashboards",
        "/user/somebody/other/",
    ):
        r = requests.get(origin + path, headers=TAB, allow_redirects=False, timeout=30)
        # the proxy has no route there: its 404, through the hub's error page
        assert r.status_code == 404, (path, r.status_code, r.headers.get("Location"))
        assert (
            "Set-Cookie" not in r.headers or "jupyterhub-hub-login" not in r.headers["Set-Cookie"]
        ), path
    # the same paths on the hub's own host are the hub's
    assert requests.get(hub.url + "/hub/login", timeout=30).status_code == 200
    assert requests.get(hub.url + "/hub/api/", timeout=30).status_code == 200
    # and the dashboard itself is still on its host
    page = requests.get(dashboard, headers=FRAME, allow_redirects=False, timeout=30)
    assert page.status_code in (200, 302), page.status_code
