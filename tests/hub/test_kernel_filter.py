"""No code from viewers, through a real hub: a shared Voilà dashboard's kernel websocket.

The example Voilà dashboard (a slider whose observer writes ``n squared is …``
into a label) is published by an author for one other user. That viewer opens
it as a student does (the service's open flow), reads the kernel id from the
rendered page, and talks to the kernel through the launcher with the page's
cookies: code, introspection, stdin replies and shutdown never reach the
kernel, while the widget messages a dashboard needs still do. Voilà keeps a list of
message types of its own (it lets a shutdown_request through, not an execute_request):
the last test puts the launcher's proxy in front of a plain Jupyter server, whose kernel
runs the code it is sent, once unfiltered (it runs) and once under Voilà's rules (not).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import websocket
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)
from tornado import web
from tornado import websocket as websocket_handler

from hub_viz.launcher import kernel_filter as kf
from hub_viz.launcher.proxy import ProxyMixin

from ..conftest import free_port, origin_of, wait_until
from ..examples import EXAMPLES
from ..loopback import serve

pytestmark = pytest.mark.hub


AUTHOR, VIEWER = "kf-author", "kf-viewer"
SLUG = "kf-voila"
V1 = "v1.kernel.websocket.jupyter.org"
BASE = f"/user/{AUTHOR}/{SLUG}/"
KERNEL_ID = re.compile(r'"kernelId": "([0-9a-f-]{36})"')


@pytest.fixture(scope="module")
def dashboard(hub):
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": SLUG,
            "title": "Kernel filter",
            "entry": "voila/dashboard.ipynb",
            "visibility": "users",
            "share_users": [VIEWER],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["mode"] == "shared" and r.json()["framework"] == "voila"
    yield
    r = hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)
    assert r.status_code in (204, 404), r.text


def enter(hub, user: str) -> requests.Session:
    """Open the dashboard as ``user`` through the service, like a click on its card."""
    body = hub.open_ready(AUTHOR, SLUG, user)
    session = requests.Session()
    page = session.get(hub.public(body["url"]), timeout=60)
    assert page.status_code == 200 and page.url == hub.at(BASE), (page.status_code, page.url)
    return session


def render(hub, session: requests.Session) -> str:
    """Load the page (a fresh kernel for this viewer); its kernel id."""
    page = session.get(hub.at(BASE), timeout=60)
    assert page.status_code == 200
    assert EXAMPLES["voila-example"][1] in page.text  # the kernel ran the author's cells
    match = KERNEL_ID.search(page.text)
    assert match, page.text[:2000]
    return match.group(1)


def connect(hub, session: requests.Session, kernel: str, protocol: str | None):
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    url = hub.at(BASE).replace("http", "ws", 1) + f"api/kernels/{kernel}/channels"
    ws = websocket.create_connection(
        f"{url}?session_id={uuid.uuid4()}",
        header=[f"Cookie: {cookies}"],
        origin=origin_of(hub.at(BASE)),
        subprotocols=[protocol] if protocol else None,
        timeout=30,
    )
    assert ws.getsubprotocol() == protocol
    return ws


class Kernel:
    """Jupyter messages over one websocket, in either framing."""

    def __init__(self, ws: websocket.WebSocket, protocol: str | None) -> None:
        self.ws, self.protocol = ws, protocol
        self.session = uuid.uuid4().hex

    def send(self, msg_type: str, content: dict, channel: str = "shell", **extra) -> str:
        msg_id = uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "username": "viewer",
            "session": self.session,
            "date": "2026-11-22T10:00:00.000Z",
            "version": "5.3",
        }
        metadata = extra.get("metadata", {})
        if self.protocol == V1:
            parts = [json.dumps(p).encode() for p in (header, {}, metadata, content)]
            self.ws.send_binary(serialize_msg_to_ws_v1(parts, channel))
        else:
            self.ws.send(
                json.dumps(
                    {
                        "header": header,
                        "parent_header": {},
                        "metadata": metadata,
                        "content": content,
                        "buffers": [],
                        "channel": channel,
                    }
                )
            )
        return msg_id

    def receive(self, seconds: float) -> list[dict]:
        """Every message the kernel sends within ``seconds``."""
        out: list[dict] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                break
            if isinstance(frame, bytes):
                channel, parts = deserialize_msg_from_ws_v1(frame)
                header, parent, _, content = (json.loads(p) for p in parts[:4])
                out.append(
                    {
                        "channel": channel,
                        "header": header,
                        "parent_header": parent,
                        "content": content,
                        "msg_type": header["msg_type"],
                    }
                )
            else:
                out.append(json.loads(frame))
        return out

    def reply_to(self, msg_id: str, msg_type: str, seconds: float = 30) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for msg in self.receive(1):
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == msg_type:
                    return msg
        raise AssertionError(f"no {msg_type} for {msg_id}")


def send_forbidden(kernel: Kernel, marker: Path) -> dict[str, str]:
    """Everything a viewer must not get to the kernel; msg_type -> msg_id."""
    code = f"open({str(marker)!r}, 'w').write('viewer code ran')"
    sent = {
        "execute_request": kernel.send(
            "execute_request",
            {
                "code": code,
                "silent": False,
                "store_history": True,
                "user_expressions": {},
                "allow_stdin": True,
                "stop_on_error": False,
            },
        ),
        "inspect_request": kernel.send(
            "inspect_request", {"code": code, "cursor_pos": 4, "detail_level": 1}
        ),
        "complete_request": kernel.send("complete_request", {"code": "import o", "cursor_pos": 8}),
        "history_request": kernel.send(
            "history_request", {"output": True, "raw": True, "hist_access_type": "tail", "n": 10}
        ),
        "is_complete_request": kernel.send("is_complete_request", {"code": code}),
        "input_reply": kernel.send("input_reply", {"value": code}, channel="stdin"),
        "debug_request": kernel.send(
            "debug_request",
            {"type": "request", "seq": 1, "command": "debugInfo"},
            channel="control",
        ),
        "interrupt_request": kernel.send("interrupt_request", {}, channel="control"),
        "shutdown_request": kernel.send("shutdown_request", {"restart": False}, channel="control"),
    }
    # a widget message type sent to another channel is not a widget message
    sent["kernel_info_request (control)"] = kernel.send(
        "kernel_info_request", {}, channel="control"
    )
    return sent


def assert_kernel_never_answered(kernel: Kernel, sent: dict[str, str], marker: Path) -> None:
    """None of ``sent`` was answered or ran, once the kernel has answered a
    kernel_info_request sent after them (it takes a connection's messages in order).

    Voilà lets a ``shutdown_request`` through itself: had the launcher passed the one in
    ``sent``, the kernel would have stopped and never answered here.
    """
    probe = kernel.send("kernel_info_request", {})
    replies: list[dict] = []
    deadline = time.monotonic() + 30
    while not any(
        m["parent_header"].get("msg_id") == probe and m["msg_type"] == "kernel_info_reply"
        for m in replies
    ):
        assert time.monotonic() < deadline, "the kernel stopped answering"
        replies += kernel.receive(1)
    answered = {m["msg_type"] for m in replies if m["parent_header"].get("msg_id") in sent.values()}
    assert not answered, f"the kernel answered refused messages: {answered}"
    assert not marker.exists(), "the viewer's code ran"


def log_of(hub) -> str:
    return hub.log.read_text(errors="replace")


def test_viewer_cannot_run_code_but_the_widgets_work(hub, dashboard) -> None:
    session = enter(hub, VIEWER)
    kernel_id = render(hub, session)
    marker = Path("/tmp") / f"hub-viz-kf-{uuid.uuid4().hex}"
    ws = connect(hub, session, kernel_id, V1)  # what Voilà's page negotiates
    kernel = Kernel(ws, V1)
    try:
        sent = send_forbidden(kernel, marker)
        ws.send_binary(b"\x07\x00\x00\x00not a kernel message")  # unreadable: dropped too
        assert_kernel_never_answered(kernel, sent, marker)

        # what a dashboard needs still gets its answer
        info = kernel.reply_to(kernel.send("kernel_info_request", {}), "kernel_info_reply")
        assert info["content"]["status"] == "ok"
        comms = kernel.reply_to(kernel.send("comm_info_request", {}), "comm_info_reply")
        targets = {c["target_name"] for c in comms["content"]["comms"].values()}
        assert "jupyter.widget" in targets

        # the widget manager's own handshake: the state of every widget ...
        control = uuid.uuid4().hex
        kernel.send(
            "comm_open",
            {"comm_id": control, "target_name": "jupyter.widget.control", "data": {}},
            metadata={"version": "1.0.0"},
        )
        request = kernel.send(
            "comm_msg", {"comm_id": control, "data": {"method": "request_states"}}
        )
        states = kernel.reply_to(request, "comm_msg")["content"]["data"]["states"]
        slider = next(k for k, v in states.items() if v["model_name"] == "IntSliderModel")
        label = next(k for k, v in states.items() if v["model_name"] == "LabelModel")
        assert states[label]["state"]["value"] == "n squared is 49"

        # ... and moving the slider runs the author's observer, which updates the label
        move = kernel.send(
            "comm_msg",
            {
                "comm_id": slider,
                "data": {"method": "update", "state": {"value": 9}, "buffer_paths": []},
            },
        )
        deadline = time.monotonic() + 30
        updated = None
        while updated is None and time.monotonic() < deadline:
            for msg in kernel.receive(1):
                data = msg["content"].get("data", {})
                if (
                    msg["msg_type"] == "comm_msg"
                    and msg["parent_header"].get("msg_id") == move
                    and msg["content"].get("comm_id") == label
                ):
                    updated = data.get("state", {}).get("value")
        assert updated == "n squared is 81"
        kernel.send("comm_close", {"comm_id": control, "data": {}})
    finally:
        ws.close()

    # the kernel is alive and was never asked to stop
    model = session.get(hub.at(f"{BASE}api/kernels/{kernel_id}"), timeout=30)
    assert model.status_code == 200 and model.json()["id"] == kernel_id
    assert not marker.exists()

    # every refusal is in the launcher's log (the hub's log collects it): type and viewer only
    log = log_of(hub)
    who = f"from {VIEWER} (open link) to kernel {kernel_id}"
    for msg_type in (
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "input_reply",
        "debug_request",
        "interrupt_request",
        "shutdown_request",
    ):
        assert f"Dropped a {msg_type} message {who}: not a widget message" in log, msg_type
    assert f"Dropped a kernel_info_request message {who}: on the control channel" in log
    assert f"Dropped a (unreadable) message {who}: malformed frame" in log
    assert marker.name not in log and "viewer code ran" not in log


def test_the_legacy_json_protocol_is_filtered_too(hub, dashboard) -> None:
    session = enter(hub, VIEWER)
    kernel_id = render(hub, session)
    marker = Path("/tmp") / f"hub-viz-kf-{uuid.uuid4().hex}"
    ws = connect(hub, session, kernel_id, None)
    kernel = Kernel(ws, None)
    try:
        sent = send_forbidden(kernel, marker)
        assert_kernel_never_answered(kernel, sent, marker)
        info = kernel.reply_to(kernel.send("kernel_info_request", {}), "kernel_info_reply")
        assert info["content"]["status"] == "ok"
    finally:
        ws.close()
    assert (
        f"Dropped a execute_request message from {VIEWER} (open link) to kernel {kernel_id}"
        in log_of(hub)
    )


def test_the_owner_is_filtered_too_in_shared_mode(hub, dashboard) -> None:
    session = enter(hub, AUTHOR)
    kernel_id = render(hub, session)
    marker = Path("/tmp") / f"hub-viz-kf-{uuid.uuid4().hex}"
    ws = connect(hub, session, kernel_id, V1)
    kernel = Kernel(ws, V1)
    try:
        msg_id = kernel.send(
            "execute_request",
            {
                "code": f"open({str(marker)!r}, 'w')",
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
            },
        )
        assert_kernel_never_answered(kernel, {"execute_request": msg_id}, marker)
        assert kernel.reply_to(kernel.send("kernel_info_request", {}), "kernel_info_reply")
    finally:
        ws.close()
    assert (
        f"Dropped a execute_request message from {AUTHOR} (open link) to kernel {kernel_id}"
        in log_of(hub)
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "api/contents"),
        ("GET", "api/contents/voila/dashboard.ipynb"),
        ("POST", "api/kernels"),
        ("GET", "api/kernels"),
        ("GET", "api/sessions"),
        ("POST", "api/sessions"),
        ("GET", "api/terminals"),
        ("POST", "api/terminals"),
        ("GET", "api/kernelspecs"),
        ("GET", "files/voila/dashboard.ipynb"),
        ("GET", "voila/dashboard.ipynb"),
        ("DELETE", "api/kernels/{kernel}"),
        ("POST", "api/kernels/{kernel}/interrupt"),
        ("POST", "api/kernels/{kernel}/restart"),
    ],
)
def test_jupyter_rest_paths_are_refused(hub, dashboard, viewer_session, method, path) -> None:
    session, kernel_id = viewer_session
    r = session.request(
        method,
        hub.at(f"{BASE}{path.format(kernel=kernel_id)}"),
        json={
            "name": "python3",
            "path": "x.ipynb",
            "type": "notebook",
            "kernel": {"name": "python3"},
        },
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.json()["source"] == "hub-viz"
    # the kernel the page uses is untouched
    assert session.get(hub.at(f"{BASE}api/kernels/{kernel_id}"), timeout=30).status_code == 200


@pytest.fixture(scope="module")
def viewer_session(hub, dashboard):
    session = enter(hub, VIEWER)
    return session, render(hub, session)


def test_a_websocket_to_another_jupyter_route_is_closed(hub, dashboard, viewer_session) -> None:
    session, _ = viewer_session
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    for path in ("terminals/websocket/1", "api/events/subscribe"):
        ws = websocket.create_connection(
            hub.at(BASE).replace("http", "ws", 1) + path,
            header=[f"Cookie: {cookies}"],
            origin=origin_of(hub.at(BASE)),
            timeout=30,
        )
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 1008, data
        ws.close()
    assert f"Refused websocket {BASE}terminals/websocket/1 for {VIEWER} (open link)" in log_of(hub)


def test_the_page_still_frees_its_kernel_on_unload(hub, dashboard) -> None:
    """The one write Voilà's page makes: a beacon shutting down its own kernel."""
    session = enter(hub, VIEWER)
    kernel_id = render(hub, session)
    # navigator.sendBeacon(): same-origin, form data with the `_xsrf` of document.cookie
    # (none: the launcher keeps XSRF cookies from the app)
    r = session.post(
        hub.at(f"{BASE}voila/api/shutdown/{kernel_id}"),
        headers={"Origin": origin_of(hub.at(BASE)), "Sec-Fetch-Site": "same-origin"},
        files={"_xsrf": (None, "")},
        timeout=30,
    )
    assert r.status_code == 204, (r.status_code, r.text[:300])
    assert session.get(hub.at(f"{BASE}api/kernels/{kernel_id}"), timeout=30).status_code == 404


# -- the filter in front of a kernel that runs what it is sent ------------------------
#
# Voilà keeps its own list of message types (a kernel_info_request, comm messages and a
# shutdown_request): an execute_request through the launcher above would be dropped by
# Voilà too, so the marker above proves little for it. Here the launcher's proxy
# (ProxyMixin, as the launcher mounts it) stands in front of a plain Jupyter server with
# no such list: its kernel runs every execute_request it receives. With the viewer's
# rules for Voilà the code never runs; with the rules that leave the kernel channel
# unfiltered (the owner of a per-viewer notebook), the same message runs it.


class FilteringProxy(ProxyMixin, websocket_handler.WebSocketHandler):
    """The launcher's proxying for a viewer named bob under ``rules``, token and all."""

    def initialize(self, port: int, token: str, rules: str) -> None:
        self._port, self.app_token, self._rules = port, token, rules

    @property
    def app_port(self) -> int:
        return self._port

    def note_activity(self) -> None:
        pass

    def viewer(self) -> dict:
        return {"kind": "user", "name": "bob"}

    def jupyter_rules(self) -> str:
        return self._rules

    async def get(self, *args: str) -> None:
        await self.open_upstream_websocket()
        await websocket_handler.WebSocketHandler.get(self)


@pytest.fixture(scope="module")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory):
    """A plain Jupyter server (no message-type list) on a free port; (port, token)."""
    root = tmp_path_factory.mktemp("plain-jupyter")
    port, token = free_port(), uuid.uuid4().hex
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0",
            "--ServerApp.open_browser=False",
            "--ServerApp.allow_root=True",  # CI runs as root
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(root / "runtime")},
    )
    auth = {"Authorization": f"token {token}"}

    def up() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/status", headers=auth).ok
        except requests.ConnectionError:
            assert proc.poll() is None, (root / "server.log").read_text()
            return False

    try:
        wait_until(up, timeout=60, what="the Jupyter server")
        yield port, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def new_kernel(port: int, token: str) -> str:
    r = requests.post(
        f"http://127.0.0.1:{port}/api/kernels",
        json={"name": "python3"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def v1_message(msg_type: str, content: dict) -> tuple[str, bytes]:
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": msg_type,
        "username": "bob",
        "session": uuid.uuid4().hex,
        "date": "2026-11-22T10:00:00.000Z",
        "version": "5.3",
    }
    parts = [json.dumps(p).encode() for p in (header, {}, {}, content)]
    return msg_id, serialize_msg_to_ws_v1(parts, "shell")


async def execute_then_ask(port: int, token: str, rules: str, marker: Path) -> set[str]:
    """Through the proxy under ``rules``: an execute_request whose code writes ``marker``,
    then a kernel_info_request. Returns the msg_types answered to the execute once the
    kernel_info_reply is in (the kernel handles its shell messages in order: by then it
    has run the execute, or never received it)."""
    kernel = new_kernel(port, token)
    front, front_port = serve(
        web.Application([(r"/.*", FilteringProxy, {"port": port, "token": token, "rules": rules})])
    )
    code = f"open({str(marker)!r}, 'w').write('viewer code ran')"
    execute_id, execute = v1_message(
        "execute_request",
        {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    )
    info_id, info = v1_message("kernel_info_request", {})
    conn = await websocket_handler.websocket_connect(
        f"ws://127.0.0.1:{front_port}/api/kernels/{kernel}/channels?session_id=s",
        subprotocols=[V1],
    )
    answered: set[str] = set()
    try:
        assert conn.selected_subprotocol == V1
        await conn.write_message(execute, binary=True)
        await conn.write_message(info, binary=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frame = await asyncio.wait_for(conn.read_message(), deadline - time.monotonic())
            assert isinstance(frame, bytes), frame
            _, parts = deserialize_msg_from_ws_v1(frame)
            header, parent = json.loads(parts[0]), json.loads(parts[1])
            if parent.get("msg_id") == execute_id:
                answered.add(header["msg_type"])
            if parent.get("msg_id") == info_id and header["msg_type"] == "kernel_info_reply":
                return answered
        raise AssertionError("no kernel_info_reply")
    finally:
        conn.close()
        front.stop()


async def test_the_filter_keeps_code_from_a_kernel_that_would_run_it(
    jupyter_server, tmp_path
) -> None:
    port, token = jupyter_server
    # without the filter (the kernel channel passed as it is): the code runs
    ran = tmp_path / "unfiltered-marker"
    answered = await execute_then_ask(port, token, kf.UNFILTERED, ran)
    assert "execute_reply" in answered and ran.read_text() == "viewer code ran"
    # with a viewer's rules for Voilà: the same message never reaches the kernel
    kept = tmp_path / "filtered-marker"
    answered = await execute_then_ask(port, token, kf.VOILA, kept)
    assert not answered, answered
    assert not kept.exists(), "the viewer's code ran"
