"""The app's port: held by the launcher so no one else is given it, and taken for the
app's only when the app's own processes listen there (real sockets and processes)."""

import asyncio
import os
import socket
import sys
import textwrap

import pytest
from tornado import httpserver, netutil, web

from hub_viz.launcher.ports import AppPort, group_members, listening_sockets
from hub_viz.launcher.process import AppProcess, AppState

pytestmark = pytest.mark.unit

# an app as the frameworks' servers bind: SO_REUSEADDR (tornado's bind_sockets), then listen
APP = textwrap.dedent(
    """
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"the app")

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
    """
)


class Impostor(web.RequestHandler):
    def get(self) -> None:
        self.finish("not the app")


def impostor_on(port: int) -> httpserver.HTTPServer:
    """Another program's server on ``port``, bound as servers bind (SO_REUSEADDR)."""
    server = httpserver.HTTPServer(web.Application([(r"/.*", Impostor)]))
    server.add_sockets(netutil.bind_sockets(port, "127.0.0.1"))
    return server


def test_a_held_port_is_given_to_no_one_asking_for_a_free_port():
    held = [AppPort() for _ in range(50)]
    try:
        numbers = {p.number for p in held}
        assert len(numbers) == 50
        given = set()
        for _ in range(2000):  # as JupyterHub's random_port and other launchers ask
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                given.add(s.getsockname()[1])
        assert not numbers & given
        # bound but not listening: a connect is refused, so nothing answers for the app
        with socket.socket() as s, pytest.raises(ConnectionRefusedError):
            s.connect(("127.0.0.1", held[0].number))
    finally:
        for p in held:
            p.close()


def test_the_app_listens_on_its_held_port_and_is_ready():
    async def scenario():
        port = AppPort()
        app = AppProcess(
            [sys.executable, "-c", APP, str(port.number)],
            env={},
            cwd=".",
            ready_url=f"http://127.0.0.1:{port.number}/ready",
            port=port,
        )
        await app.start()
        try:
            ready = await app.wait_ready(30)
            state, message = app.state, app.message
            assert app.proc is not None
            owned = port.listened_by_group(app.proc.pid)
        finally:
            await app.stop()
            port.close()
        return ready, state, message, owned

    ready, state, message, owned = asyncio.run(scenario())
    assert ready is True and state is AppState.READY, message
    assert owned is True


def test_another_program_on_the_apps_port_is_not_taken_for_the_app():
    """The launcher would otherwise send its viewers to whatever answers there."""

    async def scenario(check: bool):
        port = AppPort()
        impostor = impostor_on(port.number)  # there first, answering 200
        app = AppProcess(
            [sys.executable, "-c", "import time; time.sleep(60)"],  # still importing
            env={},
            cwd=".",
            ready_url=f"http://127.0.0.1:{port.number}/ready",
            port=port if check else None,
        )
        await app.start()
        try:
            ready = await app.wait_ready(10)
            assert app.proc is not None
            owned = port.listened_by_group(app.proc.pid)
            if not ready:
                await asyncio.wait_for(app.exited.wait(), 15)
        finally:
            await app.stop()
            impostor.stop()
            port.close()
        return app, ready, owned

    app, ready, owned = asyncio.run(scenario(check=True))
    assert ready is False and owned is False
    assert app.state is AppState.FAILED
    assert app.message == (
        "Another program is listening on the app's port, so the app cannot serve there."
    )
    assert app.returncode is not None  # the app was stopped

    # without the check the impostor's answer counts as the app's
    app, ready, _ = asyncio.run(scenario(check=False))
    assert ready is True


def test_listening_sockets_and_group_members_read_proc():
    port = AppPort()
    try:
        assert listening_sockets(port.number) == set()  # bound, not listening
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port.number))
            s.listen()
            inodes = listening_sockets(port.number)
            assert inodes is not None and len(inodes) == 1
            assert os.getpid() in group_members(os.getpgid(0))
            assert port.listened_by_group(os.getpgid(0)) is True
            assert port.listened_by_group(2**22 + 7) is False  # no such group
    finally:
        port.close()


def test_an_app_that_cannot_be_looked_into_is_not_judged(monkeypatch):
    """An app that made itself non-dumpable hides its ``/proc/<pid>/fd``: no verdict (the
    start goes on) rather than a refusal of the app's own listener."""
    import hub_viz.launcher.ports as ports

    port = AppPort()
    real_listdir = os.listdir

    def listdir(path):
        if str(path).startswith("/proc/") and str(path).endswith("/fd"):
            raise PermissionError(13, "Permission denied", path)
        return real_listdir(path)

    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port.number))
            s.listen()
            monkeypatch.setattr(ports.os, "listdir", listdir)
            assert port.listened_by_group(os.getpgid(0)) is None
    finally:
        port.close()
