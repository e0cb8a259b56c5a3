"""marimo sessions in Chromium through a real hub: bound to their viewer, normal use intact.

A viewer uses a shared marimo dashboard in two tabs and reloads one; another
viewer's page that opens a websocket naming the first viewer's session id is
refused, and the first viewer's tab goes on answering.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator

import pytest

from ..conftest import PASSWORD, Hub
from ..examples import MORE_EXAMPLES
from .conftest import logged_in_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        importlib.util.find_spec("marimo") is None, reason="marimo is not installed"
    ),
]

AUTHOR, VIEWER_A, VIEWER_B = "bs-author", "bs-alice", "bs-bob"
SLUG = "bs-marimo"
SHOWN = MORE_EXAMPLES["marimo-example"][1]
SESSION_ID = re.compile(r"[?&]session_id=([^&]+)")


@pytest.fixture(scope="module")
def published(hub: Hub) -> Iterator[None]:
    with hub.published(
        AUTHOR,
        SLUG,
        MORE_EXAMPLES["marimo-example"][0],
        viewers=(VIEWER_A, VIEWER_B),
        title="Session binding",
        visibility="all",
    ):
        yield


def open_tab(page, hub: Hub) -> tuple[object, str]:
    """Open the dashboard in ``page``; (its frame locator, the session id its socket names)."""
    with page.expect_websocket(lambda ws: "/ws?" in ws.url, timeout=90_000) as opened:
        page.goto(hub.open_location(AUTHOR, SLUG))
    frame = page.frame_locator("#dashboard-frame")
    frame.get_by_text(SHOWN).first.wait_for(timeout=90_000)
    return frame, SESSION_ID.search(opened.value.url).group(1)


def step(frame, key: str, wanted: str) -> None:
    slider = frame.locator('[role="slider"]').first
    slider.click()
    slider.press(key)
    frame.get_by_text(wanted).first.wait_for(timeout=60_000)


def test_two_tabs_a_reload_and_a_refused_replay(hub: Hub, browser, published) -> None:
    alice, first = logged_in_page(browser, hub.url, VIEWER_A, PASSWORD)
    bob, intruder = logged_in_page(browser, hub.url, VIEWER_B, PASSWORD)
    try:
        frame, sid = open_tab(first, hub)
        step(frame, "ArrowRight", "n squared is 64")

        second = alice.new_page()  # a second tab: a session of its own
        frame2, sid2 = open_tab(second, hub)
        assert sid2 != sid
        step(frame2, "ArrowLeft", "n squared is 36")

        # Bob's page opens a websocket naming Alice's first tab's session
        open_tab(intruder, hub)
        bob_frame = next(f for f in intruder.frames if f"/user/{AUTHOR}/" in f.url)
        outcome = bob_frame.evaluate(
            """sid => new Promise(done => {
                const url = location.href.split('?')[0].replace(/^http/, 'ws') + 'ws?session_id=' + sid;
                const ws = new WebSocket(url);
                ws.onopen = () => { ws.close(); done('opened'); };
                ws.onclose = () => done('refused');
            })""",
            sid,
        )
        assert outcome == "refused"
        # ... while a socket naming a fresh id of his own opens (the check above can fail)
        own = bob_frame.evaluate(
            """() => new Promise(done => {
                const url = location.href.split('?')[0].replace(/^http/, 'ws') + 'ws?session_id=s_zz' + Date.now().toString(36).slice(-4);
                const ws = new WebSocket(url);
                ws.onopen = () => { ws.close(); done('opened'); };
                ws.onclose = () => done('refused');
            })"""
        )
        assert own == "opened"

        # Alice's first tab still drives its session; a reload gives her the app again
        step(frame, "ArrowRight", "n squared is 81")
        first.reload()
        first.frame_locator("#dashboard-frame").get_by_text(SHOWN).first.wait_for(timeout=90_000)
        step(frame2, "ArrowLeft", "n squared is 25")
    finally:
        bob.close()
        alice.close()
