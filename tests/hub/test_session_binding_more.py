"""Streamlit, Gradio and Shiny sessions are their viewer's alone, on shared dashboards.

Each of these frameworks names a tab's session by an id that works as a
bearer bare: Streamlit resumes the session a websocket names in its third
``Sec-WebSocket-Protocol`` entry and takes uploads into it by path; Gradio
runs events on the state of the session hash a queue call names (JSON body),
streams that session's results to whoever names it (query) and keeps it alive
by path; Shiny serves a session's downloads to whoever names its id in the
path. Streamlit and Shiny make the id themselves and hand it out on the tab's
websocket: the launcher binds it to that viewer as it passes, so another
viewer is refused even before the owner ever names it. Through a real hub,
another viewer replaying an id is refused (403, logged without the id); the
owner's reconnects, second tabs and own requests keep working.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
import websocket

from ..conftest import BROWSER_UA, Hub, origin_of

pytestmark = pytest.mark.hub

AUTHOR, ALICE, BOB = "sm-author", "sm-alice", "sm-bob"
REFUSAL = "names another viewer's session"

GRADIO_APP = """
import gradio as gr


def add(n, total):
    total = (total or 0) + int(n)
    return total, f"total in this session is {total}"


with gr.Blocks() as demo:
    n = gr.Number(value=1)
    total = gr.State(0)
    out = gr.Markdown("total in this session is 0")
    gr.Button("Add").click(add, [n, total], [total, out])
"""

SHINY_APP = """
from shiny import App, render, ui

app_ui = ui.page_fluid(
    ui.input_numeric("n", "n", 7),
    ui.download_button("report", "Report"),
)


def server(input, output, session):
    @render.download(filename="report.txt")
    def report():
        yield f"this session's n is {input.n()}"


app = App(app_ui, server)
"""


def needs(module: str):
    return pytest.mark.skipif(
        importlib.util.find_spec(module) is None, reason=f"{module} is not installed"
    )


class Viewer:
    """One viewer's browser on one dashboard: their cookies and the server's base URL."""

    def __init__(self, hub: Hub, slug: str, name: str) -> None:
        body = hub.open_ready(AUTHOR, slug, name)
        owner, server = body["server"].split("/", 1)
        self.http = requests.Session()
        self.http.headers["User-Agent"] = BROWSER_UA
        page = self.http.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200, page.text[:300]
        self.base = hub.at(f"/user/{owner}/{server}/")
        self.origin = origin_of(self.base)

    def cookies(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def websocket(self, path: str, subprotocols: list[str] | None = None) -> websocket.WebSocket:
        return websocket.create_connection(
            self.base.replace("http", "ws", 1) + path,
            header=[f"Cookie: {self.cookies()}", f"User-Agent: {BROWSER_UA}"],
            origin=self.origin,
            subprotocols=subprotocols,
            timeout=2,
        )

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Origin": self.origin, **kwargs.pop("headers", {})}
        return self.http.request(method, self.base + path, timeout=60, headers=headers, **kwargs)


def publish(hub: Hub, slug: str, spec: dict) -> None:
    for name in (AUTHOR, ALICE, BOB):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={"slug": slug, "title": slug, "visibility": "all", **spec},
    )
    assert r.status_code == 201, r.text


def refusals_logged(hub: Hub, viewer: str, kinds: tuple[str, ...], secret: str) -> None:
    """The hub log has a refusal of each kind for ``viewer``, and never the id."""
    deadline = time.monotonic() + 10
    lines: list[str] = []
    while time.monotonic() < deadline:
        log = hub.log.read_text(errors="replace")
        lines = [line for line in log.splitlines() if REFUSAL in line and viewer in line]
        if all(any(f"Refused {k}" in line for line in lines) for k in kinds):
            break
        time.sleep(0.2)
    for kind in kinds:
        assert any(f"Refused {kind}" in line for line in lines), lines
    assert secret not in hub.log.read_text(errors="replace")


# -- Streamlit -----------------------------------------------------------------------------


def streamlit_connect(viewer: Viewer, session_id: str = "") -> websocket.WebSocket:
    protocols = ["streamlit", "PLACEHOLDER_AUTH_TOKEN"] + ([session_id] if session_id else [])
    return viewer.websocket("_stcore/stream", protocols)


def streamlit_session(ws: websocket.WebSocket, seconds: float = 60) -> tuple[str, bytes]:
    """Ask for a script run; (the session id Streamlit issued, what it sent)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    back = BackMsg()
    back.rerun_script.query_string = ""
    back.rerun_script.page_script_hash = ""
    ws.send_binary(back.SerializeToString())
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = ws.recv()
        except websocket.WebSocketTimeoutException:
            continue
        received += data if isinstance(data, bytes) else data.encode()
        msg = ForwardMsg()
        msg.ParseFromString(data)
        if msg.WhichOneof("type") == "new_session":
            return msg.new_session.initialize.session_id, received
    raise AssertionError("Streamlit issued no session")


@pytest.fixture(scope="module")
def streamlit_viewers(hub: Hub) -> Iterator[tuple[Viewer, Viewer]]:
    publish(hub, "sm-streamlit", {"framework": "streamlit", "entry": "streamlit/app.py"})
    yield Viewer(hub, "sm-streamlit", ALICE), Viewer(hub, "sm-streamlit", BOB)
    hub.svc("DELETE", f"dashboards/{AUTHOR}/sm-streamlit", AUTHOR)


@needs("streamlit")
def test_streamlit_session_is_bound_as_it_is_issued(hub: Hub, streamlit_viewers) -> None:
    alice, bob = streamlit_viewers
    ws = streamlit_connect(alice)
    try:
        sid, _ = streamlit_session(ws)
        # Alice never named her id; Bob names it first, in each place, and is refused
        for protocols in (
            ["streamlit", "PLACEHOLDER_AUTH_TOKEN", sid],
            ["streamlit", "", sid],  # an empty entry keeps the id third for Streamlit
        ):
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                bob.websocket("_stcore/stream", protocols)
            assert refused.value.status_code == 403
        r = bob.request("PUT", f"_stcore/upload_file/{sid}/f1", files={"file": ("x.txt", b"bob's")})
        assert r.status_code == 403 and "belongs to another viewer" in r.json()["message"]
        assert ws.connected
    finally:
        ws.close()
    # Alice's reconnect names her id and resumes her session
    again = streamlit_connect(alice, sid)
    try:
        resumed, _ = streamlit_session(again)
        assert resumed == sid
    finally:
        again.close()
    # a second tab of Alice's, and Bob's own session, are sessions of their own, each
    # bound as it is issued (the second viewer's too: ids every session shares bind
    # nothing)
    for viewer, other_viewer in ((alice, bob), (bob, alice)):
        other = streamlit_connect(viewer)
        try:
            issued = streamlit_session(other)[0]
            assert issued not in ("", sid)
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                streamlit_connect(other_viewer, issued)
            assert refused.value.status_code == 403
        finally:
            other.close()
    refusals_logged(hub, BOB, ("websocket", "PUT"), sid)
    refusals_logged(hub, ALICE, ("websocket",), sid)


# -- Gradio --------------------------------------------------------------------------------


def gradio_add(viewer: Viewer, session_hash: str, n: int) -> requests.Response:
    return viewer.request(
        "POST",
        "gradio_api/queue/join",
        json={"data": [n, None], "fn_index": 0, "session_hash": session_hash},
    )


def gradio_result(viewer: Viewer, session_hash: str, event_id: str) -> str:
    """The text the event's completion carries, read from the session's stream."""
    with viewer.http.get(
        viewer.base + "gradio_api/queue/data",
        params={"session_hash": session_hash},
        stream=True,
        timeout=60,
    ) as r:
        assert r.status_code == 200, r.text[:300]
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed" and msg.get("event_id") == event_id:
                return json.dumps(msg["output"])
    raise AssertionError("no result")


@pytest.fixture(scope="module")
def gradio_viewers(hub: Hub) -> Iterator[tuple[Viewer, Viewer]]:
    folder = hub.root / "sessions"
    folder.mkdir(exist_ok=True)
    (folder / "gradio_state.py").write_text(GRADIO_APP)
    publish(hub, "sm-gradio", {"framework": "gradio", "entry": "sessions/gradio_state.py"})
    yield Viewer(hub, "sm-gradio", ALICE), Viewer(hub, "sm-gradio", BOB)
    hub.svc("DELETE", f"dashboards/{AUTHOR}/sm-gradio", AUTHOR)


@needs("gradio")
def test_gradio_session_hash_is_bound_to_its_viewer(hub: Hub, gradio_viewers) -> None:
    alice, bob = gradio_viewers
    mine = uuid.uuid4().hex[:11]
    r = gradio_add(alice, mine, 2)
    assert r.status_code == 200, r.text
    assert "total in this session is 2" in gradio_result(alice, mine, r.json()["event_id"])

    # Bob replays Alice's hash: running an event on her state (JSON body), reading her
    # session's stream (query) and its heartbeat (path) are all refused
    r = gradio_add(bob, mine, 100)
    assert r.status_code == 403 and "belongs to another viewer" in r.json()["message"]
    r = bob.request("GET", "gradio_api/queue/data", params={"session_hash": mine})
    assert r.status_code == 403
    r = bob.request("GET", f"gradio_api/heartbeat/{mine}")
    assert r.status_code == 403
    # a form-typed body is not parsed as JSON by the app: it cannot name the hash either
    r = bob.request(
        "POST",
        "gradio_api/queue/join",
        data=json.dumps({"data": [100, None], "fn_index": 0, "session_hash": mine}),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 422, r.text[:300]

    # a JSON body too large to check is refused with a reason, never passed unchecked
    r = bob.request(
        "POST",
        "gradio_api/queue/join",
        json={"data": ["x" * (2 * 1024 * 1024), None], "fn_index": 0, "session_hash": mine},
    )
    assert r.status_code == 413 and "larger than the dashboard accepts" in r.text, r.text[:300]

    # Alice's state went on untouched by Bob
    r = gradio_add(alice, mine, 3)
    assert r.status_code == 200, r.text
    assert "total in this session is 5" in gradio_result(alice, mine, r.json()["event_id"])
    # a second tab of hers (a hash of its own), and Bob's own session, start at 0
    for viewer in (alice, bob):
        own = uuid.uuid4().hex[:11]
        r = gradio_add(viewer, own, 1)
        assert r.status_code == 200, r.text
        assert "total in this session is 1" in gradio_result(viewer, own, r.json()["event_id"])
    refusals_logged(hub, BOB, ("POST", "GET"), mine)


# -- Shiny ---------------------------------------------------------------------------------


def shiny_session(viewer: Viewer, n: int) -> tuple[websocket.WebSocket, str]:
    ws = viewer.websocket("websocket/")
    config = json.loads(ws.recv())
    sid = config["config"]["sessionId"]
    ws.send(json.dumps({"method": "init", "data": {"n": n}}))
    return ws, sid


def shiny_report(viewer: Viewer, sid: str) -> requests.Response:
    return viewer.request("GET", f"session/{sid}/download/report", params={"w": ""})


@pytest.fixture(scope="module")
def shiny_viewers(hub: Hub) -> Iterator[tuple[Viewer, Viewer]]:
    folder = hub.root / "sessions"
    folder.mkdir(exist_ok=True)
    (folder / "shiny_download.py").write_text(SHINY_APP)
    publish(hub, "sm-shiny", {"framework": "shiny", "entry": "sessions/shiny_download.py"})
    yield Viewer(hub, "sm-shiny", ALICE), Viewer(hub, "sm-shiny", BOB)
    hub.svc("DELETE", f"dashboards/{AUTHOR}/sm-shiny", AUTHOR)


def wait_for_report(viewer: Viewer, sid: str, wanted: str) -> requests.Response:
    deadline = time.monotonic() + 30
    while True:
        r = shiny_report(viewer, sid)
        if wanted in r.text or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@needs("shiny")
def test_shiny_session_is_bound_as_it_is_issued(hub: Hub, shiny_viewers) -> None:
    alice, bob = shiny_viewers
    ws, sid = shiny_session(alice, 13)
    try:
        # Bob names Alice's id before she ever did: her download is refused to him
        r = shiny_report(bob, sid)
        assert r.status_code == 403 and "belongs to another viewer" in r.json()["message"]
        # ... and so is the id percent-encoded (Shiny decodes the path)
        encoded = f"%{ord(sid[0]):02X}{sid[1:]}"
        assert shiny_report(bob, encoded).status_code == 403
        # ... while Alice gets it, twice (a second click), with her session's value
        for _ in range(2):
            r = wait_for_report(alice, sid, "this session's n is 13")
            assert r.status_code == 200 and r.text == "this session's n is 13", r.text[:300]
    finally:
        ws.close()
    # Bob's own session gives him his own download
    ws, own = shiny_session(bob, 4)
    try:
        assert own != sid
        r = wait_for_report(bob, own, "this session's n is 4")
        assert r.status_code == 200 and r.text == "this session's n is 4", r.text[:300]
    finally:
        ws.close()
    refusals_logged(hub, BOB, ("GET",), sid)
