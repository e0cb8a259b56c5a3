"""Dashboards render in headless Chromium through the hub: websockets included."""

from __future__ import annotations

import pytest

from ..conftest import PASSWORD, both_layouts
from ..examples import EXAMPLES

pytestmark = pytest.mark.browser

# What a viewer can only see when the app's live part works (websocket or callback).
LIVE_TEXT = {
    "voila-example": "n squared is 49",  # an ipywidgets Label, drawn over the kernel websocket
    "dash-example": "n squared is 49",  # a Dash callback answered through the proxy
    "bokeh-example": EXAMPLES["bokeh-example"][1],  # Bokeh documents arrive over a websocket
    "panel-example": "n squared is 49",
    "streamlit-example": "n squared is 49",
}


hub = both_layouts()


@pytest.fixture(scope="module")
def alice_page(hub, browser):
    for name in LIVE_TEXT:
        spec = EXAMPLES[name][0]
        r = hub.start("alice", f"b-{name}"[:30], spec)
        assert r.status_code in (201, 202), r.text
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url("**/hub/home")
    for name in LIVE_TEXT:
        assert hub.wait("alice", f"b-{name}"[:30]).get("ready")
    yield page
    context.close()
    for name in LIVE_TEXT:
        hub.stop("alice", f"b-{name}"[:30])


@pytest.mark.parametrize("name", list(LIVE_TEXT))
def test_dashboard_renders_live_content(hub, alice_page, name):
    server = f"b-{name}"[:30]
    alice_page.goto(hub.at(f"/user/alice/{server}/"))
    alice_page.get_by_text(EXAMPLES[name][1]).first.wait_for(timeout=60_000)
    alice_page.get_by_text(LIVE_TEXT[name]).first.wait_for(timeout=60_000)
    assert f"/user/alice/{server}/" in alice_page.url


def test_open_a_card_from_the_home_page(hub, alice_page):
    """The new-user path: home page card, Open, progress, the dashboard."""
    alice_page.goto(f"{hub.url}/hub/home")
    card = alice_page.locator('.hub-viz-gallery .card[data-dashboard="preset-dash"]')
    assert card.get_by_text("Sales (preset)").is_visible()
    assert card.get_by_text("dash").is_visible()
    card.get_by_role("link", name="Open").click()
    alice_page.get_by_text(EXAMPLES["dash-example"][1]).wait_for(timeout=60_000)
    assert alice_page.url == hub.at("/user/alice/preset-dash/")
    alice_page.goto(f"{hub.url}/hub/home")
    running = alice_page.locator('.hub-viz-gallery .card[data-dashboard="preset-dash"] .badge')
    assert "running" in running.all_inner_texts()
    hub.stop("alice", "preset-dash")
