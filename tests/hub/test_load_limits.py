"""What a launcher holds under load, against a real hub, proxy, launcher and app.

- anonymous uploads of 60 MiB (several at once, one held short of its length)
  are refused before their body is read, and the launcher's memory stays flat;
- an allowed viewer's large uploads reach the app whole, streamed;
- viewers who do not read their downloads make the launcher hold nothing more;
- an app that stops answering under a running launcher gets viewers a 503
  with a "restarting" page (a message for scripts), never a 500.

The bound is the one SECURITY.md states ("what an instance holds at most").
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
import websocket

from hub_viz.service.deploy import READY_SECONDS

from ..conftest import Hub, wait_until
from .test_source_audit import environ

pytestmark = pytest.mark.hub

OWNER = "ld-owner"
SERVER = "ld-app"
MIB = 1024 * 1024
UPLOAD = 60 * MIB
DOWNLOAD = 50 * MIB
# The launcher's RSS may grow at most this much above its level before the load.
BOUND = 50 * MIB

# A tornado app: POST counts the body it gets, GET /big sends 50 MiB, /ws sends 200
# messages of 1 MiB (as fast as the socket takes them; /ws-sent says how many went),
# /die-server stops the server but leaves its parent process running (an app that
# stopped answering while its process lives, as a crashed worker under a supervisor).
LOAD_APP = """
import asyncio
import os
import signal
import sys
import time

port, prefix = int(sys.argv[1]), sys.argv[2]
MIB = 1024 * 1024

if os.fork():  # the launcher's child stays; the server below can die on its own
    while True:
        time.sleep(3600)

from tornado import web, websocket

sent = [0]


@web.stream_request_body
class Upload(web.RequestHandler):
    def prepare(self):
        self.received = 0

    def data_received(self, chunk):
        self.received += len(chunk)

    def post(self):
        self.finish({"received": self.received})


class Big(web.RequestHandler):
    async def get(self):
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(50 * MIB))
        block = b"x" * MIB
        for _ in range(50):
            self.write(block)
            await self.flush()


class Flood(websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    async def open(self):
        block = b"x" * MIB
        for _ in range(200):
            await self.write_message(block, binary=True)
            sent[0] += 1


class Sent(web.RequestHandler):
    def get(self):
        self.finish(str(sent[0]))


class Die(web.RequestHandler):
    def get(self):
        self.finish("bye")
        asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGKILL)


class Page(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "text/plain")
        self.finish(f"load app pid {os.getpid()}")


async def main():
    web.Application([
        (prefix + "upload", Upload), (prefix + "big", Big), (prefix + "ws", Flood),
        (prefix + "ws-sent", Sent), (prefix + "die-server", Die), (prefix + ".*", Page),
    ], websocket_max_message_size=2 * MIB).listen(port, "127.0.0.1",
                                                   max_body_size=100 * MIB)
    await asyncio.Event().wait()


asyncio.run(main())
"""


@pytest.fixture(scope="module")
def hub(path_hub: Hub) -> Iterator[Hub]:
    (path_hub.root / "custom" / "loadapp.py").write_text(LOAD_APP)
    yield path_hub


@pytest.fixture
def app(hub: Hub) -> Iterator[str]:
    """A fresh load app for each test (one kills its server); its public prefix."""
    spec = {
        "framework": "custom",
        "entry": "custom/loadapp.py",
        "command": ["{python}", "loadapp.py", "{port}", "{prefix}"],
    }
    assert hub.start(OWNER, SERVER, spec).status_code in (201, 202)
    assert hub.wait(OWNER, SERVER).get("ready")
    yield f"/user/{OWNER}/{SERVER}/"
    hub.stop(OWNER, SERVER)


def launcher(hub: Hub) -> psutil.Process:
    r = hub.api("GET", f"/users/{OWNER}")
    return psutil.Process(r.json()["servers"][SERVER]["state"]["pid"])


def rss(pid: int) -> int:
    """VmRSS of a process, in bytes, as /proc/<pid>/status has it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class PeakRSS:
    """Samples a process's RSS in a thread; ``peak - base`` is what a load added."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.base = rss(pid)
        self.peak = self.base
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        grown = self.peak - self.base
        print(f"launcher RSS {self.base / MIB:.0f} MiB, peak +{grown / MIB:.1f} MiB")
        return grown


def owner_session(hub: Hub, prefix: str) -> requests.Session:
    """The owner, logged in at the hub and through the launcher's hub login."""
    session = hub.fresh_login(OWNER)
    page = session.get(hub.url + prefix, timeout=60)
    assert page.status_code == 200 and "load app" in page.text, page.text[:300]
    return session


def raw_upload(hub: Hub, path: str, length: int, send: int, cookie: str = "") -> socket.socket:
    """A POST of ``length`` bytes through the proxy, of which ``send`` are sent."""
    host, port = hub.url.split("//", 1)[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    )
    sock.sendall(head.encode())
    block = b"\0" * MIB
    sent = 0
    try:
        while sent < send:
            sock.sendall(block[: min(MIB, send - sent)])
            sent += min(MIB, send - sent)
    except OSError:  # refused and closed: the rest is not wanted
        pass
    return sock


def response_head(sock: socket.socket, timeout: float) -> str:
    """The status line and headers the peer sent (empty when it sent nothing in time)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, OSError):
        pass
    return data.decode("latin-1")


class Zeros:
    """A request body of ``size`` zero bytes, read in pieces (requests streams it)."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.len = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return b"\0" * n


# -- tests ---------------------------------------------------------------------------------


def test_anonymous_uploads_are_refused_before_their_body_is_read(hub: Hub, app: str):
    pid = launcher(hub).pid
    peak = PeakRSS(pid)
    socks: list[socket.socket] = []
    started = time.monotonic()
    # one held 4 MiB short of its length: a launcher that waits for bodies never answers it
    held = raw_upload(hub, app + "x", UPLOAD, UPLOAD - 4 * MIB)
    threads = [
        threading.Thread(target=lambda: socks.append(raw_upload(hub, app + "x", UPLOAD, UPLOAD)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    heads = [response_head(s, 20) for s in [held, *socks]]
    waited = time.monotonic() - started
    grown = peak.stop()
    for s in [held, *socks]:
        s.close()
    assert [h.split("\r\n", 1)[0] for h in heads] == ["HTTP/1.1 403 Forbidden"] * 9, heads
    assert waited < 20, waited
    assert grown < BOUND, f"the launcher grew by {grown / MIB:.0f} MiB"
    # the refusal says what to do, for a script as for a person
    r = requests.post(hub.url + app + "x", data=b"small", timeout=30)
    assert r.status_code == 403
    assert r.json()["message"] == "Log in through the hub to use this dashboard."


def test_allowed_uploads_reach_the_app_streamed(hub: Hub, app: str):
    session = owner_session(hub, app)
    pid = launcher(hub).pid
    peak = PeakRSS(pid)
    results: list[requests.Response] = []

    def upload() -> None:
        results.append(session.post(hub.url + app + "upload", data=Zeros(UPLOAD), timeout=120))

    threads = [threading.Thread(target=upload) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = peak.stop()
    assert [(r.status_code, r.json()) for r in results] == [(200, {"received": UPLOAD})] * 3
    assert grown < BOUND, f"the launcher grew by {grown / MIB:.0f} MiB"
    # a body sent in chunks (no length ahead) arrives whole too
    chunked = session.post(
        hub.url + app + "upload", data=(b"\0" * MIB for _ in range(8)), timeout=120
    )
    assert (chunked.status_code, chunked.json()) == (200, {"received": 8 * MIB})
    # past the cap: refused at once with the limit named, nothing sent to the app
    cookie = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    sock = raw_upload(hub, app + "upload", 65 * MIB, MIB, cookie=cookie)
    head = response_head(sock, 20)
    sock.close()
    assert head.startswith("HTTP/1.1 413 "), head


def test_slow_readers_do_not_fill_the_launchers_memory(hub: Hub, app: str):
    session = owner_session(hub, app)
    pid = launcher(hub).pid
    peak = PeakRSS(pid)
    readers = [session.get(hub.url + app + "big", stream=True, timeout=60) for _ in range(10)]
    assert [r.status_code for r in readers] == [200] * 10
    time.sleep(5)  # long enough for a launcher that buffers to read every download whole
    grown = peak.stop()
    # the downloads still arrive whole, once read
    assert len(readers[0].content) == DOWNLOAD
    for r in readers:
        r.close()
    assert grown < BOUND, f"the launcher grew by {grown / MIB:.0f} MiB"


def test_a_viewer_who_does_not_read_a_websocket_holds_back_the_app_not_memory(hub: Hub, app: str):
    session = owner_session(hub, app)
    pid = launcher(hub).pid
    peak = PeakRSS(pid)
    cookies = "; ".join(f"{k}={v}" for k, v in session.cookies.items())
    ws = websocket.create_connection(
        hub.url.replace("http", "ws", 1) + app + "ws",
        header=[f"Cookie: {cookies}"],
        origin=hub.url,
        timeout=30,
    )
    time.sleep(5)  # long enough for a launcher without backpressure to take all 200 MiB
    grown = peak.stop()
    sent = int(session.get(hub.url + app + "ws-sent", timeout=30).text)
    assert len(ws.recv()) == MIB  # what the app sent still arrives
    ws.close()
    assert sent < 100, f"the app could send {sent} MiB to a viewer who read nothing"
    assert grown < BOUND, f"the launcher grew by {grown / MIB:.0f} MiB"


def test_an_app_that_stops_answering_gets_viewers_a_503_not_a_500(hub: Hub, app: str):
    session = owner_session(hub, app)
    server_pid = int(session.get(hub.url + app, timeout=30).text.rsplit(" ", 1)[1])
    assert session.get(hub.url + app + "die-server", timeout=30).text == "bye"
    wait_until(
        lambda: (
            not psutil.pid_exists(server_pid)
            or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE
        ),
        timeout=10,
        what="the app's server to die",
    )
    page = session.get(
        hub.url + app + "page", timeout=30, headers={"Accept": "text/html,*/*;q=0.8"}
    )
    assert page.status_code == 503, (page.status_code, page.text[:300])
    assert page.headers["Retry-After"] == "5"
    assert "The Custom command dashboard is restarting" in page.text
    script = session.post(hub.url + app + "data", data=b"{}", timeout=30)
    assert script.status_code == 503
    assert script.json()["message"] == (
        "The dashboard is not answering: it stopped or is restarting. Try again in a moment."
    )
    # the launcher's probe tells the service (or the server's own token) that the app is
    # down, and nobody else
    token = environ(launcher(hub).pid)["JUPYTERHUB_API_TOKEN"]
    probe = requests.get(
        hub.url + app + "api", timeout=30, headers={"Authorization": f"token {token}"}
    )
    assert probe.status_code == 200 and probe.json()["app"] == "not answering"
    assert set(requests.get(hub.url + app + "api", timeout=30).json()) == {"version"}
    # an app that dies with its process: the launcher exits, the hub sees the server stop
    proc = launcher(hub)
    [child] = proc.children()
    os.killpg(child.pid, signal.SIGKILL)
    wait_until(
        lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE,
        timeout=30,
        what="the launcher to exit",
    )


def test_the_open_call_does_not_send_viewers_to_an_app_that_died(hub: Hub):
    slug = "ld-dash"
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "slug": slug,
            "title": "Load: Dash",
            "framework": "dash",
            "entry": "dash/app.py",
            "visibility": "private",
        },
    )
    assert r.status_code == 201, r.text
    try:
        assert hub.open_ready(OWNER, slug, OWNER)["status"] == "ready"
        proc = psutil.Process(
            hub.api("GET", f"/users/{OWNER}").json()["servers"][slug]["state"]["pid"]
        )
        [child] = proc.children()
        os.killpg(child.pid, signal.SIGKILL)  # the app dies; the hub polls every 30 s here
        wait_until(
            lambda: not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE,
            timeout=30,
            what="the launcher to exit",
        )
        time.sleep(READY_SECONDS + 0.5)  # past the service's shared answer for a class
        r = hub.svc("POST", f"dashboards/{OWNER}/{slug}/open", OWNER)
        assert r.status_code == 200, r.text
        assert r.json()["status"] != "ready" and "url" not in r.json(), r.json()
        # the open page follows the progress stream: told what happens, then the new server
        stream = hub.svc("GET", f"dashboards/{OWNER}/{slug}/progress", OWNER, stream=True)
        events = [
            line
            for line in stream.iter_lines(decode_unicode=True)
            if line and line.startswith("data:")
        ]
        assert "ready" in events[-1] and "grant_token" in events[-1], events
        if r.json()["status"] == "restarting":
            assert "it is being restarted" in events[0], events
    finally:
        hub.svc("DELETE", f"dashboards/{OWNER}/{slug}", OWNER)
