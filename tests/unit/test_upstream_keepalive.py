"""Connections to the app are kept alive for pages and files, never for requests with a body;
an app that closes an idle connection as a request goes out costs the viewer nothing."""

from __future__ import annotations

import socket
import threading

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient

from hub_viz.launcher.upstream import connections

from ..loopback import serve
from .test_launcher_limits import Proxy

pytestmark = pytest.mark.unit


class Post(Proxy):
    async def post(self, *args: str) -> None:
        await self.proxy_http()


class Peer(web.RequestHandler):
    """The app: says which client port asked (one per connection)."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        if self.get_query_argument("close", ""):
            self.set_header("Connection", "close")
        self.finish(str(self.request.connection.context.address[1]))

    def post(self) -> None:
        self.finish(str(self.request.connection.context.address[1]))


class Streamed(web.RequestHandler):
    """An answer streamed in chunks (no Content-Length), as Voilà renders a page."""

    async def get(self) -> None:
        self.write("peer " + str(self.request.connection.context.address[1]))
        await self.flush()
        self.write(" and more")
        self.finish()


@pytest.fixture
async def app_and_front():
    app, app_port = serve(web.Application([(r"/streamed", Streamed), (r"/.*", Peer)]))
    front, port = serve(web.Application([(r"/.*", Post, {"port": app_port})]))
    yield f"http://127.0.0.1:{port}"
    front.stop()
    app.stop()
    connections(app_port).close()


async def fetch(url: str, **kwargs) -> str:
    response = await AsyncHTTPClient().fetch(url, **kwargs)
    assert response.code == 200
    return response.body.decode()


async def test_pages_reuse_one_connection_to_the_app(app_and_front):
    first = await fetch(app_and_front + "/a")
    assert [await fetch(app_and_front + f"/b{i}") for i in range(3)] == [first] * 3


async def test_a_request_with_a_body_and_an_answer_that_closes_get_their_own(app_and_front):
    kept = await fetch(app_and_front + "/a")
    posted = await fetch(app_and_front + "/p", method="POST", body=b"x")
    assert posted != kept
    assert await fetch(app_and_front + "/a") == kept  # the POST's was not put back
    closing = await fetch(app_and_front + "/a?close=1")
    assert closing == kept  # sent on the kept one, which the app then closed
    assert await fetch(app_and_front + "/a") not in (kept, posted)


async def test_a_streamed_answer_is_passed_on_whole_and_its_connection_kept(app_and_front):
    first = await fetch(app_and_front + "/streamed")
    assert first.startswith("peer ") and first.endswith(" and more")
    assert await fetch(app_and_front + "/streamed") == first
    assert await fetch(app_and_front + "/a") == first.split()[1]


def closing_app() -> tuple[socket.socket, int, list[int]]:
    """An app that answers one request per connection with keep-alive, then closes the
    connection without answering when a second request comes on it (its keep-alive timer
    firing as the request goes out). ``answered`` counts the answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    answered: list[int] = []

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            answered.append(1)  # counted before the answer can reach the client
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.recv(65536)  # the next request: dropped, connection closed

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1], answered


async def test_a_kept_connection_the_app_drops_unanswered_is_retried_once_on_a_new_one():
    listener, app_port, answered = closing_app()
    front, port = serve(web.Application([(r"/.*", Proxy, {"port": app_port})]))
    try:
        for _ in range(3):
            assert await fetch(f"http://127.0.0.1:{port}/page") == "ok"
        assert len(answered) == 3
    finally:
        front.stop()
        listener.close()
        connections(app_port).close()
