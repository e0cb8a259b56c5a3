"""The launcher's wait for its app: the port first (a cheap connect), then HTTP."""

import asyncio
import socket

import pytest
from tornado import httpserver, netutil, web

from hub_viz.launcher.process import AppProcess, AppState

pytestmark = pytest.mark.unit


class Answers(web.RequestHandler):
    """Answers with the codes given, one per request, then the last one again."""

    def initialize(self, codes: list[int], seen: list[str]) -> None:
        self.codes = codes
        self.seen = seen

    def get(self) -> None:
        self.seen.append(self.request.path)
        self.set_status(self.codes.pop(0) if len(self.codes) > 1 else self.codes[0])
        self.finish("ok")


def free_socket() -> socket.socket:
    return netutil.bind_sockets(0, "127.0.0.1")[0]


def app_at(port: int) -> AppProcess:
    return AppProcess(["true"], env={}, cwd=".", ready_url=f"http://127.0.0.1:{port}/ready")


def serve(sock: socket.socket, codes: list[int], seen: list[str]) -> httpserver.HTTPServer:
    server = httpserver.HTTPServer(
        web.Application([(r"/ready", Answers, {"codes": codes, "seen": seen})])
    )
    server.add_sockets([sock])
    return server


def test_the_app_is_ready_once_its_port_listens_and_it_answers():
    async def scenario():
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()  # nothing listens at first: connects are refused
        seen: list[str] = []
        app = app_at(port)
        waiting = asyncio.ensure_future(app.wait_ready(10))
        await asyncio.sleep(0.4)
        assert not waiting.done() and app.state is AppState.STARTING
        late = netutil.bind_sockets(port, "127.0.0.1")[0]
        server = serve(late, [503, 503, 200], seen)
        try:
            assert await asyncio.wait_for(waiting, 10) is True
        finally:
            server.stop()
        return app, seen

    app, seen = asyncio.run(scenario())
    assert app.state is AppState.READY
    # once listening, asked over HTTP until it answered below 500
    assert seen == ["/ready", "/ready", "/ready"]


def test_a_port_that_never_listens_fails_the_start_with_a_reason():
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    app = app_at(port)
    assert asyncio.run(app.wait_ready(0.5)) is False
    assert app.state is AppState.FAILED
    assert app.message == "The app did not answer within 0.5 seconds."


def test_a_port_that_accepts_but_never_answers_fails_the_start():
    async def scenario():
        sock = free_socket()  # listening (the kernel accepts), never read
        sock.listen(8)
        app = app_at(sock.getsockname()[1])
        try:
            return app, await app.wait_ready(1.0)
        finally:
            sock.close()

    app, ready = asyncio.run(scenario())
    assert ready is False and app.state is AppState.FAILED
