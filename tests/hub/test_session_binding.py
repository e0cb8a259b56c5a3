"""A marimo session is its viewer's alone, on a shared dashboard through a real hub.

marimo (``marimo run``) names each tab's session by an id the page sends on
its websocket (``?session_id=``) and its UI posts (``Marimo-Session-Id``).
Bare, whoever names an id takes that session over (its websocket is handed
to them, the owner's is closed) and sets its UI elements. Through hub_viz a
second viewer replaying the first one's id is refused; the first viewer's
session goes on, and reloads and second tabs still work.
"""

from __future__ import annotations

import importlib.util
import re
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket

from ..conftest import BROWSER_UA, Hub, origin_of
from ..examples import MORE_EXAMPLES

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        importlib.util.find_spec("marimo") is None, reason="marimo is not installed"
    ),
]

AUTHOR, VIEWER_A, VIEWER_B = "sb-author", "sb-alice", "sb-bob"
SLUG, PUBLIC_SLUG = "sb-marimo", "sb-marimo-public"
REFUSAL = "names another viewer's session"


class Viewer:
    """One viewer's browser: their cookies, the page's server token, their websockets."""

    def __init__(self, hub: Hub, name: str | None, slug: str = SLUG) -> None:
        body = hub.open_ready(AUTHOR, slug, name)
        owner, server = body["server"].split("/", 1)
        self.name = name
        self.http = requests.Session()
        self.http.headers["User-Agent"] = BROWSER_UA
        page = self.http.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200, page.text[:300]
        self.base = hub.at(f"/user/{owner}/{server}/")
        assert page.url == self.base
        self.server_token = re.search(r'data-token="([^"]+)"', page.text).group(1)

    def connect(self, session_id: str) -> websocket.WebSocket:
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        return websocket.create_connection(
            self.base.replace("http", "ws", 1) + f"ws?session_id={session_id}",
            header=[f"Cookie: {cookies}", f"User-Agent: {BROWSER_UA}"],
            origin=origin_of(self.base),
            timeout=1,
        )

    def set_value(self, session_id: str, object_id: str, value: int) -> requests.Response:
        return self.http.post(
            self.base + "api/kernel/set_ui_element_value",
            timeout=60,
            json={"objectIds": [object_id], "values": [value]},
            headers={
                "Marimo-Session-Id": session_id,
                "Marimo-Server-Token": self.server_token,
                "Origin": origin_of(self.base),
            },
        )


def read_until(ws: websocket.WebSocket, wanted: str, seconds: float = 60) -> str:
    """What the session sends until ``wanted`` appears (or the time is up)."""
    received = ""
    deadline = time.monotonic() + seconds
    while wanted not in received and time.monotonic() < deadline:
        try:
            received += ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
    return received


def new_session_id() -> str:
    return f"s-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def viewers(hub: Hub) -> Iterator[tuple[Viewer, Viewer]]:
    with hub.published(
        AUTHOR,
        SLUG,
        MORE_EXAMPLES["marimo-example"][0],
        viewers=(VIEWER_A, VIEWER_B),
        title="Session binding",
        visibility="all",
    ):
        alice, bob = Viewer(hub, VIEWER_A), Viewer(hub, VIEWER_B)
        assert alice.base == bob.base  # one shared instance serves both
        yield alice, bob


def test_another_viewer_replaying_a_session_id_is_refused(hub: Hub, viewers) -> None:
    alice, bob = viewers
    sid = new_session_id()
    ws = alice.connect(sid)
    try:
        shown = read_until(ws, "n squared is 49")
        assert "n squared is 49" in shown
        object_id = re.search(r"object-id='([^']+)'", shown).group(1)

        # Bob learned Alice's id: his websocket naming it is refused before it reaches marimo
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            bob.connect(sid)
        assert refused.value.status_code == 403
        # ... and so is setting her slider with it
        r = bob.set_value(sid, object_id, 3)
        assert r.status_code == 403 and "belongs to another viewer" in r.json()["message"]

        # Alice's session was neither taken over nor changed: her socket still drives it
        r = alice.set_value(sid, object_id, 5)
        assert r.status_code == 200, r.text
        shown = read_until(ws, "n squared is 25")
        assert "n squared is 25" in shown
        assert "n squared is 9<" not in shown
        assert ws.connected
    finally:
        ws.close()
    log = hub.log.read_text(errors="replace")
    refusals = [line for line in log.splitlines() if REFUSAL in line and VIEWER_B in line]
    assert any("Refused websocket" in line for line in refusals), refusals
    assert any("Refused POST" in line for line in refusals), refusals
    assert sid not in log  # the id is a bearer: never logged


def test_reconnect_reload_and_second_tab_of_the_same_viewer_work(hub: Hub, viewers) -> None:
    alice, bob = viewers
    sid = new_session_id()
    first = alice.connect(sid)
    try:
        shown = read_until(first, "n squared is 49")
        object_id = re.search(r"object-id='([^']+)'", shown).group(1)
        assert alice.set_value(sid, object_id, 4).status_code == 200
        assert "n squared is 16" in read_until(first, "n squared is 16")
    finally:
        first.close()
    # a dropped connection comes back with the same id: marimo hands Alice her session back
    again = alice.connect(sid)
    try:
        assert "You have reconnected to an existing session" in read_until(
            again, "reconnected to an existing session"
        )
        assert alice.set_value(sid, object_id, 6).status_code == 200
        assert "n squared is 36" in read_until(again, "n squared is 36")
        # a reload, or a second tab, is a new page with an id of its own: a fresh session
        tab = alice.connect(new_session_id())
        try:
            assert "n squared is 49" in read_until(tab, "n squared is 49")
            assert again.connected
        finally:
            tab.close()
    finally:
        again.close()
    # Bob's own session works beside Alice's
    own = bob.connect(new_session_id())
    try:
        assert "n squared is 49" in read_until(own, "n squared is 49")
    finally:
        own.close()


@pytest.fixture(scope="module")
def anonymous_viewers(hub: Hub) -> Iterator[tuple[Viewer, Viewer]]:
    with hub.published(
        AUTHOR,
        PUBLIC_SLUG,
        MORE_EXAMPLES["marimo-example"][0],
        title="Session binding (public)",
        visibility="public",
    ):
        first, second = Viewer(hub, None, PUBLIC_SLUG), Viewer(hub, None, PUBLIC_SLUG)
        assert first.base == second.base
        yield first, second


def test_anonymous_viewers_are_told_apart_by_their_browser(hub: Hub, anonymous_viewers) -> None:
    first, second = anonymous_viewers
    assert any(c.name.endswith("hub-viz-browser") for c in first.http.cookies)
    sid = new_session_id()
    ws = first.connect(sid)
    try:
        shown = read_until(ws, "n squared is 49")
        object_id = re.search(r"object-id='([^']+)'", shown).group(1)
        # another anonymous browser naming the first one's session is refused
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            second.connect(sid)
        assert refused.value.status_code == 403
        assert second.set_value(sid, object_id, 3).status_code == 403
        # the first browser goes on with its session, and reconnects to it
        assert first.set_value(sid, object_id, 2).status_code == 200
        assert "n squared is 4<" in read_until(ws, "n squared is 4<")
    finally:
        ws.close()
    again = first.connect(sid)
    try:
        assert "reconnected to an existing session" in read_until(
            again, "reconnected to an existing session"
        )
    finally:
        again.close()
