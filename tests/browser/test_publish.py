"""Publishing and sharing in the browser, against a real hub and real apps.

An author logs in through the hub's login form, publishes a Voilà notebook and
a Bokeh app from the service's form and shares both with a group. A student in
the group finds them on the hub's home page, searches, opens one and watches
the progress bar until the running dashboard shows; a student outside the
group sees neither and gets a 404 page at the direct link.
"""

from __future__ import annotations

import json

import pytest

from ..conftest import PASSWORD, SERVICE, both_layouts
from ..examples import EXAMPLES
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR, STUDENT_IN, STUDENT_OUT, GROUP = "prof-browser", "student-in", "student-out", "course-101"
VOILA = f"{AUTHOR}/squares-in-voila"  # slug made by the service from the title
BOKEH = f"{AUTHOR}/bokeh-squares"  # slug typed into the form
# dashboard -> what the author types into the form
FORMS = {
    VOILA: {"#title": "Squares in Voilà", "#entry": "voila/dashboard.ipynb"},
    BOKEH: {
        "#title": "Squares in Bokeh",
        "#slug": "bokeh-squares",
        "#description": "A slider and a plot of x to the power",
        "#entry": "bokeh/app.py",
    },
}

# Keeps what the open page shows in the tab's sessionStorage (read back after the
# dashboard has replaced the progress box in the page).
RECORD_PROGRESS = """
(() => {
  if (!location.pathname.includes("/open/")) { return; }
  const record = (kind, value) => {
    const seen = JSON.parse(sessionStorage.getItem("hub-viz-progress") || "[]");
    seen.push([kind, value]);
    sessionStorage.setItem("hub-viz-progress", JSON.stringify(seen));
  };
  document.addEventListener("DOMContentLoaded", () => {
    const bar = document.getElementById("progress-bar");
    const log = document.getElementById("progress-log");
    record("page", location.pathname);
    if (!bar || !log) { return; }
    record("value", Number(bar.getAttribute("aria-valuenow")));
    new MutationObserver(() => record("value", Number(bar.getAttribute("aria-valuenow"))))
      .observe(bar, {attributes: true, attributeFilter: ["aria-valuenow"]});
    new MutationObserver((changes) => changes.forEach((c) => c.addedNodes.forEach(
      (node) => record("message", node.textContent)))).observe(log, {childList: true});
  });
})();
"""


def log_in(hub, browser, name):
    """A fresh browser (a desktop Chrome by its user agent) logged in through the form,
    recording the open page's progress."""
    return logged_in_page(
        browser,
        hub.url,
        name,
        PASSWORD,
        init_script=RECORD_PROGRESS,
        viewport={"width": 1280, "height": 900},
    )


def card(page, ref):
    return page.locator(f'#hub-viz-gallery .hub-viz-card[data-dashboard="{ref}"]')


hub = both_layouts()


@pytest.fixture(scope="module")
def published(hub, browser):
    """The author publishes both dashboards from the form, shared with the group."""
    hub.ensure_user(STUDENT_IN)
    r = hub.api("POST", f"/groups/{GROUP}")
    assert r.status_code in (201, 409), r.text
    r = hub.api("POST", f"/groups/{GROUP}/users", json={"users": [STUDENT_IN]})
    assert r.status_code == 200, r.text
    # only a course's instructors may share with it (as an LTI launch would set them)
    hub.ensure_user(AUTHOR)
    r = hub.api("POST", f"/groups/{GROUP}-instructors")
    assert r.status_code in (201, 409), r.text
    r = hub.api("POST", f"/groups/{GROUP}-instructors/users", json={"users": [AUTHOR]})
    assert r.status_code == 200, r.text

    context, page = log_in(hub, browser, AUTHOR)
    for ref, fields in FORMS.items():
        page.goto(f"{hub.url}/hub/home")
        page.locator("#hub-viz-gallery #hub-viz-publish").click()
        page.wait_for_url(f"**{SERVICE}publish")
        page.locator("#framework option[value=bokeh]").wait_for(state="attached")  # choices loaded
        for selector, value in fields.items():
            page.fill(selector, value)
        page.select_option("#visibility", "groups")
        page.fill("#share-groups", GROUP)
        page.click("#publish-submit")
        page.wait_for_url(f"**{SERVICE}d/{ref}")  # the manage page of the new dashboard
        assert page.locator("h1").inner_text() == fields["#title"]
        assert page.locator("#visibility").inner_text() == "groups"
        assert GROUP in page.locator("#manage").inner_text()
        assert page.locator("#open-link").inner_text() == f"{hub.service_url}open/{ref}"
    context.close()
    yield
    for ref in FORMS:
        r = hub.svc("DELETE", f"dashboards/{ref}", AUTHOR)
        assert r.status_code in (204, 404), r.text


def test_author_publishes_and_shares_with_a_group(hub, published):
    voila = hub.svc("GET", f"dashboards/{VOILA}", AUTHOR).json()
    bokeh = hub.svc("GET", f"dashboards/{BOKEH}", AUTHOR).json()
    assert (voila["title"], voila["framework"], voila["entry"]) == (
        "Squares in Voilà",
        "voila",
        "voila/dashboard.ipynb",
    )
    assert (bokeh["title"], bokeh["framework"], bokeh["entry"]) == (
        "Squares in Bokeh",
        "bokeh",
        "bokeh/app.py",
    )
    for d in (voila, bokeh):
        assert (d["visibility"], d["share_groups"], d["mode"]) == ("groups", [GROUP], "shared")
        assert d["status"] == "stopped"  # publishing starts nothing


def test_student_in_the_group_finds_opens_and_sees_the_dashboard(hub, browser, published):
    context, page = log_in(hub, browser, STUDENT_IN)
    voila, bokeh = card(page, VOILA), card(page, BOKEH)
    voila.wait_for()
    bokeh.wait_for()
    assert "Squares in Voilà" in voila.inner_text() and "voila" in voila.inner_text()
    assert "Squares in Bokeh" in bokeh.inner_text() and f"by {AUTHOR}" in bokeh.inner_text()
    assert voila.locator(".hub-viz-manage").count() == 0  # only the author manages it

    search = page.locator("#hub-viz-search")
    search.fill("bokeh slider")
    bokeh.wait_for()
    voila.wait_for(state="hidden")
    search.fill("no such dashboard")
    bokeh.wait_for(state="hidden")
    assert page.locator("#hub-viz-no-match").is_visible()
    search.fill("squares")
    voila.wait_for()
    bokeh.wait_for()
    assert not page.locator("#hub-viz-no-match").is_visible()

    bokeh.get_by_role("link", name="Open").click()
    # The open page shows the dashboard in its frame (and pings while it is seen).
    frame = page.frame_locator("#dashboard-frame")
    frame.get_by_text(EXAMPLES["bokeh-example"][1]).wait_for(timeout=90_000)
    assert page.url == f"{hub.service_url}open/{BOKEH}"
    assert f"/user/{BOKEH}/_hub_viz/enter?grant_token=" in page.locator(
        "#dashboard-frame"
    ).get_attribute("src")

    seen = json.loads(page.evaluate("sessionStorage.getItem('hub-viz-progress') || '[]'"))
    assert ["page", f"{SERVICE}open/{BOKEH}"] in seen
    values = [v for kind, v in seen if kind == "value"]
    messages = [v for kind, v in seen if kind == "message"]
    assert values, seen  # the open page had its progress bar
    assert values[-1] == 100 and values[-1] > values[0], seen  # which filled up
    assert values == sorted(values), seen  # and never went back
    # The hub's own progress events were shown while the app started (a Bokeh
    # server takes far longer to start than the page takes to ask), then the end.
    assert "Starting the Bokeh dashboard…" in messages, seen
    assert messages[-1] == "Ready. Opening the dashboard…", seen

    page.goto(f"{hub.url}/hub/home")
    assert card(page, BOKEH).locator(".hub-viz-status").inner_text() == "running"
    assert card(page, VOILA).locator(".hub-viz-status").inner_text() == "stopped"
    context.close()


def test_student_outside_the_group_sees_nothing_and_gets_404(hub, browser, published):
    context, page = log_in(hub, browser, STUDENT_OUT)
    page.locator("#hub-viz-gallery #hub-viz-search").wait_for()  # the gallery has loaded
    assert card(page, VOILA).count() == 0
    assert card(page, BOKEH).count() == 0

    for ref in (VOILA, BOKEH):
        response = page.goto(f"{hub.service_url}open/{ref}")
        assert response.status == 404
        assert page.locator("h1").inner_text() == "404"
        assert "No dashboard" in page.locator("#error-message").inner_text()
        assert page.locator("#progress-bar").count() == 0
    page.get_by_role("link", name="Back to the hub").click()
    page.wait_for_url("**/hub/home")
    context.close()
    # The attempts started nothing: the Voilà dashboard was never opened by anyone.
    servers = hub.api("GET", f"/users/{AUTHOR}").json().get("servers", {})
    assert VOILA.split("/")[1] not in servers


def test_resources_beyond_the_ceiling_are_refused_in_the_form_and_nothing_is_lost(hub, browser):
    """The form states the hub's ceiling, shows the refusal, and keeps what was typed."""
    context, page = log_in(hub, browser, AUTHOR)
    try:
        page.goto(f"{hub.service_url}publish")
        page.locator("#profile option[value=small]").wait_for(state="attached")
        assert page.locator("#profile option[value=small]").inner_text() == "Small"
        assert page.locator("#ceiling-hint").inner_text() == (
            "At most 2 CPU and 4G memory per instance."
        )
        page.fill("#title", "Big board")
        page.fill("#entry", "bokeh/app.py")
        page.fill("#memory", "16G")
        page.click("#publish-submit")
        error = page.locator("#form-error")
        error.wait_for(state="visible")
        assert "asks for 16G of memory; this hub allows at most 4G per dashboard" in (
            error.inner_text()
        )
        assert page.locator("#title").input_value() == "Big board"  # nothing typed is lost
        assert hub.svc("GET", f"dashboards/{AUTHOR}/big-board", AUTHOR).status_code == 404

        page.select_option("#profile", "small")
        page.fill("#memory", "512M")
        page.click("#publish-submit")
        page.wait_for_url(f"**{SERVICE}d/{AUTHOR}/big-board")
        stored = hub.svc("GET", f"dashboards/{AUTHOR}/big-board", AUTHOR).json()
        assert (stored["profile"], stored["resources"]) == ("small", {"memory": "512M"})
    finally:
        context.close()
        hub.svc("DELETE", f"dashboards/{AUTHOR}/big-board", AUTHOR)


def test_warm_start_settings_in_the_form(hub, browser):
    """Preheated kernels and "keep running" for a shared Voilà dashboard; a refusal shows."""
    context, page = log_in(hub, browser, AUTHOR)
    try:
        page.goto(f"{hub.service_url}publish")
        page.locator("#profile option[value=small]").wait_for(state="attached")
        page.fill("#title", "Warm report")
        page.fill("#entry", "voila/dashboard.ipynb")
        assert page.locator("#warm-pool").is_hidden()  # shared mode: no warm pool
        page.fill("#warm-kernels", "2")
        page.select_option("#keep-warm", "always")
        page.select_option("#mode", "per-viewer")
        assert page.locator("#warm-kernels").is_hidden() and page.locator("#warm-pool").is_visible()
        page.select_option("#mode", "shared")
        page.click("#publish-submit")
        page.wait_for_url(f"**{SERVICE}d/{AUTHOR}/warm-report")
        stored = hub.svc("GET", f"dashboards/{AUTHOR}/warm-report", AUTHOR).json()
        assert stored["warm_kernels"] == 2 and stored["warm_pool"] == 0
        assert (
            stored["keep_warm"][0]["start"] == "00:00" and stored["keep_warm"][0]["end"] == "24:00"
        )

        # editing shows what is stored; kernels for a Dash app are refused with the reason
        page.goto(f"{hub.service_url}d/{AUTHOR}/warm-report/edit")
        page.locator("#warm-kernels").wait_for()
        assert page.locator("#keep-warm").input_value() == "always"
        assert page.locator("#warm-kernels").input_value() == "2"
        page.fill("#entry", "dash/app.py")
        page.select_option("#framework", "dash")
        page.click("#publish-submit")
        error = page.locator("#form-error")
        error.wait_for(state="visible")
        assert "has no preheated kernels" in error.inner_text()
        assert (
            hub.svc("GET", f"dashboards/{AUTHOR}/warm-report", AUTHOR).json()["framework"]
            == "voila"
        )  # nothing changed
    finally:
        context.close()
        hub.svc("DELETE", f"dashboards/{AUTHOR}/warm-report", AUTHOR)
