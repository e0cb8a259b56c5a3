"""Idle shutdown, live: a watched dashboard stays up, an unwatched one never does.

One real hub on the isolated layout with jupyterhub-idle-culler (a 60-second
timeout, checked every 10 s) and Chromium pages whose visibility and focus an
init script sets. The scenarios run side by side, each on a dashboard of its
own, and each asserts the hub's own timestamps:

- kept alive past the timeout, last activity at most a ping and an activity
  interval old: a focused open page; the full window (the open page's link)
  with Dash callbacks, a Bokeh slider and a Streamlit slider moved meanwhile;
  a keep-warm window without any viewer;
- culled within timeout + cull_every + activity interval of the last activity
  they were credited with, which nothing after their start moved: a page
  hidden after it opened; crawlers (GET, HEAD and bot opens with the viewer's
  cookie); XHR polling (Dash's layout and callbacks); scripted HTML GETs with
  navigation headers and without;
- a stopped dashboard loaded in a background tab starts only when shown;
- a culled dashboard's bookmarked URL reopens through its open page; a
  viewer who may not see a dashboard gets the same 404 there as for one that
  does not exist.

The hub copies configurable-http-proxy's per-request stamps every 5 s here
(every 300 s in production), so traffic through the proxy is put to the test
as well. The culler runs with its role's four scopes and nothing more.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import requests

from hub_viz.config import CULLER, CULLER_SCOPES

from ..conftest import BROWSER_UA, PASSWORD, Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.browser

TIMEOUT, EVERY = 60, 10  # the culler's, in seconds
PING, ACTIVITY = 5, 5  # the open page's ping period, the service's activity coalescing
SLACK = 10  # the test's own polling, and the stop itself
CULLED_WITHIN = TIMEOUT + EVERY + ACTIVITY + SLACK
KEPT_FOR = TIMEOUT + 2 * EVERY + ACTIVITY  # well past the moment it would have been culled
OWNER, VIEWER, OUTSIDER = "idle-owner", "idle-viewer", "idle-outsider"
DASH = {"framework": "dash", "entry": "dash/app.py", "visibility": "all"}
SPECS = {
    "cl-focused": DASH,
    "cl-full-dash": DASH,
    "cl-full-bokeh": {**DASH, "framework": "bokeh", "entry": "bokeh/app.py"},
    "cl-full-streamlit": {**DASH, "framework": "streamlit", "entry": "streamlit/app.py"},
    "cl-hidden": DASH,
    "cl-background": DASH,
    "cl-crawled": DASH,
    "cl-polled": DASH,
    "cl-nav-script": DASH,
    "cl-html-script": DASH,
    "cl-warm": {**DASH, "keep_warm": [{"start": "00:00", "end": "24:00"}]},
    "cl-private": {**DASH, "visibility": "private"},
}
TEXT = {
    "dash": EXAMPLES["dash-example"][1],
    "bokeh": EXAMPLES["bokeh-example"][1],
    "streamlit": EXAMPLES["streamlit-example"][1],
}
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FRAME = {
    "User-Agent": BROWSER_UA,
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "iframe",
    "Sec-Fetch-Site": "same-site",
    "Accept": "text/html,*/*;q=0.8",
}
NAVIGATION = {
    **FRAME,
    "Sec-Fetch-Dest": "document",
    "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1",
    "Upgrade-Insecure-Requests": "1",
}
PLAIN_HTML = {"User-Agent": BROWSER_UA, "Accept": "text/html,*/*;q=0.8"}
CRAWLER = {"User-Agent": GOOGLEBOT, "Accept": "text/html,*/*;q=0.8"}
XHR = {
    "User-Agent": BROWSER_UA,
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Sec-Fetch-Site": "same-origin",
    "Accept": "application/json",
}

# Visibility and focus of a top-level page, as the test sets them (window.hubVizShow).
SHOWN = """
(() => {
  if (window !== window.top) { return; }
  let shown = %s;
  const doc = Document.prototype;
  Object.defineProperty(doc, "visibilityState",
                        {get: () => (shown ? "visible" : "hidden"), configurable: true});
  Object.defineProperty(doc, "hidden", {get: () => !shown, configurable: true});
  doc.hasFocus = () => shown;
  window.hubVizShow = (value) => {
    shown = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""

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
        isolated=True,
        configure_kwargs={
            "cull_timeout": TIMEOUT,
            "cull_every": EVERY,
            "activity_interval": ACTIVITY,
            "extra_service_config": {
                "reconcile_interval": 2,
                "keep_warm_interval": 3,
                "ping_seconds": PING,
                "ping_min_interval": 1,
                "thumbnails": False,
            },
        },
    )
    for name in (OWNER, VIEWER, OUTSIDER):
        running.ensure_user(name)
    yield running
    stop_hub(running)


# -- helpers -------------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def servers(hub: Hub, user: str = OWNER) -> dict[str, Any]:
    r = hub.api("GET", f"/users/{user}")
    assert r.status_code == 200, r.text
    return r.json().get("servers") or {}


def log_in(hub: Hub, browser: Any, name: str) -> Any:
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/hub/home")
    page.close()
    return context


def tab(context: Any, shown: bool) -> Any:
    page = context.new_page()
    page.add_init_script(SHOWN % ("true" if shown else "false"))
    return page


def framed(page: Any, framework: str = "dash") -> Any:
    """The dashboard in the page's frame, once it shows its text."""
    frame = page.frame_locator("#dashboard-frame")
    frame.get_by_text(TEXT[framework]).wait_for(timeout=120_000)
    return frame


def session_in(hub: Hub, slug: str) -> requests.Session:
    """A viewer's cookie for ``slug`` (started through the service), as a frame gets it."""
    body = hub.open_ready(OWNER, slug, VIEWER)
    s = requests.Session()
    r = s.get(hub.public(body["url"]), headers=FRAME, timeout=60)
    assert r.status_code == 200, (r.status_code, r.url)
    assert (
        s.get(hub.server_url(OWNER, slug) + "_dash-layout", headers=XHR, timeout=60).status_code
        == 200
    )
    return s


@dataclass
class Watch:
    """What the hub said about one dashboard's server while the suite ran."""

    slug: str
    last_activity: datetime | None = None  # the newest the hub reported while it ran
    stopped_at: datetime | None = None  # when the test first saw it gone
    quiet_since: datetime | None = None  # from when nothing of a person's reached it
    seen: list[str] = field(default_factory=list)

    def update(self, model: dict[str, Any] | None, at: datetime) -> None:
        if model and model.get("ready"):
            self.last_activity = stamp(model["last_activity"])
        elif model is None and self.last_activity is not None and self.stopped_at is None:
            self.stopped_at = at


# -- the suite -----------------------------------------------------------------------------


def test_only_a_watched_dashboard_stays_up(hub: Hub, browser: Any):
    for slug, spec in SPECS.items():
        r = hub.svc("POST", "dashboards", OWNER, json={"slug": slug, "title": slug, **spec})
        assert r.status_code == 201, r.text
    viewer = log_in(hub, browser, VIEWER)
    watches = {slug: Watch(slug) for slug in SPECS}

    # Pages a person looks at: the open page, and the full window its link leads to.
    focused = tab(viewer, shown=True)
    focused.goto(f"{hub.service_url}open/{OWNER}/cl-focused")
    framed(focused)
    full = {}
    for framework in ("dash", "bokeh", "streamlit"):
        page = tab(viewer, shown=True)
        page.goto(f"{hub.service_url}open/{OWNER}/cl-full-{framework}")
        framed(page, framework)
        with page.expect_navigation():
            page.click("#open-full")
        assert page.url == f"{hub.service_url}open/{OWNER}/cl-full-{framework}?chrome=0"
        assert page.locator("nav").count() == 0  # the full window: no bar of the service's
        full[framework] = framed(page, framework)
    hidden = tab(viewer, shown=True)
    hidden.goto(f"{hub.service_url}open/{OWNER}/cl-hidden")
    framed(hidden)
    hidden.evaluate("window.hubVizShow(false)")
    watches["cl-hidden"].quiet_since = now()

    # Traffic with nobody looking, each on a dashboard of its own.
    sessions = {
        slug: session_in(hub, slug)
        for slug in ("cl-crawled", "cl-polled", "cl-nav-script", "cl-html-script")
    }
    for slug in sessions:
        watches[slug].quiet_since = now()
    started = time.monotonic()

    # A stopped dashboard loaded in a background tab starts nothing until shown.
    background = tab(viewer, shown=False)
    loaded_at = now()
    background.goto(f"{hub.service_url}open/{OWNER}/cl-background")
    background.locator("#progress-message", has_text="Waiting until this tab is shown").wait_for()

    answered: dict[str, int] = {slug: 0 for slug in sessions}
    moves = 0

    def traffic() -> None:
        nonlocal moves
        url = hub.server_url(OWNER, "cl-crawled")
        s = sessions["cl-crawled"]
        answered["cl-crawled"] += s.get(url, headers=CRAWLER, timeout=30).status_code == 200
        s.head(url, headers=CRAWLER, timeout=30)
        bot_open = requests.post(
            f"{hub.service_url}api/dashboards/{OWNER}/cl-crawled/open",
            headers={**CRAWLER, "Authorization": f"token {hub.user_token(VIEWER)}"},
            timeout=30,
        )
        assert bot_open.status_code == 403, bot_open.text
        url = hub.server_url(OWNER, "cl-polled")
        s = sessions["cl-polled"]
        layout = s.get(url + "_dash-layout", headers=XHR, timeout=30)
        update = s.post(
            url + "_dash-update-component",
            headers={**XHR, "Content-Type": "application/json", "Origin": url.split("/user/")[0]},
            json={
                "output": "square.children",
                "outputs": {"id": "square", "property": "children"},
                "inputs": [{"id": "n", "property": "value", "value": moves}],
                "changedPropIds": ["n.value"],
            },
            timeout=30,
        )
        answered["cl-polled"] += layout.status_code == 200 and update.status_code == 200
        # a script claiming to be a tab's navigation is sent to the open page, starts nothing
        url = hub.server_url(OWNER, "cl-nav-script")
        r = sessions["cl-nav-script"].get(
            url, headers=NAVIGATION, timeout=30, allow_redirects=False
        )
        # once culled its host has no route: the proxy's 404 page (which sends a browser
        # on to the open page), so nothing is counted
        assert r.status_code in (302, 404), r.status_code
        if r.status_code == 302:
            assert r.headers["Location"] == f"{hub.service_url}open/{OWNER}/cl-nav-script?chrome=0"
            answered["cl-nav-script"] += requests.get(
                r.headers["Location"], headers=NAVIGATION, timeout=30
            ).status_code in (200, 302)
        # without Fetch Metadata the page is served, and counts for nothing
        url = hub.server_url(OWNER, "cl-html-script")
        r = sessions["cl-html-script"].get(url, headers=PLAIN_HTML, timeout=30)
        answered["cl-html-script"] += r.status_code == 200

    def interact() -> None:
        nonlocal moves
        moves += 1
        full["dash"].locator("#n").fill(str(moves))
        full["dash"].get_by_text(f"n squared is {moves * moves}").wait_for()
        # Bokeh: the slider's handle; Streamlit: its range input (and the script's answer)
        handle = full["bokeh"].locator(".noUi-handle").first
        before = handle.get_attribute("aria-valuenow")
        handle.press("ArrowLeft" if moves % 2 else "ArrowRight")
        wait_until(
            lambda: handle.get_attribute("aria-valuenow") != before,
            timeout=30,
            what="the Bokeh slider to move",
            every=0.2,
        )
        slider = full["streamlit"].locator("input[type=range]").first
        before = slider.input_value()
        slider.press("ArrowLeft" if moves % 2 else "ArrowRight")
        wait_until(
            lambda: slider.input_value() != before,
            timeout=30,
            what="the Streamlit slider to move",
            every=0.2,
        )
        n = int(slider.input_value())
        full["streamlit"].get_by_text(f"n squared is {n * n}").wait_for()

    background_checked = False
    last_interaction = 0.0
    while True:
        at = now()
        models = servers(hub)
        for slug, watch in watches.items():
            watch.update(models.get(slug), at)
        elapsed = time.monotonic() - started
        if not background_checked:
            assert "cl-background" not in models, "a background tab started its dashboard"
            if elapsed > 20:
                shown_at = now()
                background.evaluate("window.hubVizShow(true)")
                framed(background)
                background_checked = True
                background.close()
                [run] = recent(hub, "cl-background")
                began = stamp(run["started"])
                print(
                    f"cl-background: loaded hidden at {loaded_at:%H:%M:%S}, shown at "
                    f"{shown_at:%H:%M:%S}, started {began:%H:%M:%S}"
                )
                assert began >= shown_at.replace(microsecond=0), (began, shown_at)
        if time.monotonic() - last_interaction > 10:
            interact()
            last_interaction = time.monotonic()
        if any(watches[slug].stopped_at is None for slug in sessions):
            traffic()
        culled = ("cl-hidden", *sessions)
        if elapsed > KEPT_FOR and all(watches[slug].stopped_at for slug in culled):
            break
        assert elapsed < CULLED_WITHIN + 60, {s: watches[s] for s in culled}
        time.sleep(2)

    # Kept alive: still running, last activity fresh (the pings of a focused page).
    models = servers(hub)
    for slug in ("cl-focused", "cl-full-dash", "cl-full-bokeh", "cl-full-streamlit"):
        assert slug in models and models[slug]["ready"], f"{slug} was culled while watched"
        age = (now() - stamp(models[slug]["last_activity"])).total_seconds()
        print(f"{slug}: running after {elapsed:.0f} s, last activity {age:.1f} s old")
        assert age <= PING + ACTIVITY + SLACK, (slug, age)
    # the keep-warm window: running (started by it), never looked at
    assert models["cl-warm"]["ready"]
    assert moves >= 5

    # Culled: last activity never moved by the traffic, stopped within the bound.
    for slug in ("cl-hidden", *sessions):
        w = watches[slug]
        assert w.last_activity is not None and w.stopped_at is not None, w
        assert w.last_activity <= w.quiet_since, (slug, w)  # nothing counted after that
        idle = (w.stopped_at - w.last_activity).total_seconds()
        print(
            f"{slug}: last activity {w.last_activity:%H:%M:%S}, quiet from "
            f"{w.quiet_since:%H:%M:%S}, seen stopped {w.stopped_at:%H:%M:%S} ({idle:.1f} s)"
        )
        assert TIMEOUT <= idle <= CULLED_WITHIN, (slug, idle, w)
    assert all(n >= 5 for n in answered.values()), answered  # the traffic reached them

    records = wait_until(
        lambda: [d for d in recent(hub, "cl-crawled") if d["stopped"]],
        timeout=30,
        what="the service to close the deployment record",
    )
    assert [(d["stop_reason"], d["stopped_by"]) for d in records] == [("culled idle", "")]

    # A culled dashboard's bookmarked URL reopens through its open page (full window).
    bookmark = tab(viewer, shown=True)
    bookmark.goto(hub.server_url(OWNER, "cl-crawled"))
    framed(bookmark)
    assert bookmark.url == f"{hub.service_url}open/{OWNER}/cl-crawled?chrome=0"
    assert servers(hub)["cl-crawled"]["ready"]
    assert recent(hub, "cl-crawled")[0]["started_by"] == VIEWER

    # ... and shows one who may not see it the same 404 as a dashboard that does not exist
    hub.svc("POST", f"dashboards/{OWNER}/cl-private/open", OWNER)
    wait_until(
        lambda: servers(hub).get("cl-private", {}).get("ready"),
        timeout=120,
        what="the private dashboard to start",
    )
    hub.api("DELETE", f"/users/{OWNER}/servers/cl-private")
    wait_until(
        lambda: "cl-private" not in servers(hub), timeout=60, what="the private dashboard to stop"
    )
    outsider = log_in(hub, browser, OUTSIDER)
    answers = []
    for slug in ("cl-private", "cl-nothing"):
        page = outsider.new_page()
        page.goto(hub.server_url(OWNER, slug))
        page.wait_for_url(f"{hub.service_url}goto/**")
        answers.append(
            (
                page.url.rsplit("/goto/", 1)[1],
                page.locator("body").inner_text().replace(slug, "<slug>"),
            )
        )
        page.close()
    assert answers[0][0] == f"{OWNER}/cl-private/"
    assert answers[1][0] == f"{OWNER}/cl-nothing/"
    assert answers[0][1] == answers[1][1] and "404" in answers[0][1], answers
    assert "cl-private" not in servers(hub)  # and nothing started
    viewer.close()
    outsider.close()


def recent(hub: Hub, slug: str) -> list[dict[str, Any]]:
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/usage", OWNER)
    assert r.status_code == 200, r.text
    return r.json()["recent"]


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
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
