"""What bounds a launcher's memory: the spawner's limits reach it, bodies are told apart,
answers of any framing are streamed, an app that is down gets a 503."""

from __future__ import annotations

import socket
import threading

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.httputil import HTTPHeaders

from hub_viz.launcher.app import parse_args
from hub_viz.launcher.proxy import ProxyMixin, has_body

from ..loopback import serve
from .test_git_instances import path_source_args

MIB = 1024 * 1024

pytestmark = pytest.mark.unit


async def test_the_spawners_limits_reach_the_launcher(tmp_path):
    args = await path_source_args(
        tmp_path,
        launcher_max_body_size=10 * 1024 * 1024,
        launcher_body_timeout=45,
        launcher_idle_timeout=90,
    )
    options = parse_args(args)
    assert (options.max_body_size, options.body_timeout, options.idle_timeout) == (
        10 * 1024 * 1024,
        45,
        90,
    )


def test_the_launchers_defaults_bound_bodies_and_idle_connections():
    options = parse_args(["--entry=app.py"])
    assert (options.max_body_size, options.body_timeout, options.idle_timeout) == (
        64 * 1024 * 1024,
        300,
        300,
    )


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({}, False),
        ({"Content-Length": "0"}, False),
        ({"Content-Length": "12"}, True),
        ({"Transfer-Encoding": "chunked"}, True),
    ],
)
def test_has_body(headers: dict, expected: bool):
    assert has_body(HTTPHeaders(headers)) is expected


# -- the app's answers, whatever their framing -------------------------------------------


class Proxy(ProxyMixin, web.RequestHandler):
    """The launcher's HTTP proxying without its login checks."""

    def initialize(self, port: int) -> None:
        self._port = port

    @property
    def app_port(self) -> int:  # type: ignore[override]
        return self._port

    app_token = ""

    def note_activity(self) -> None:
        pass

    async def get(self, *args: str) -> None:
        await self.proxy_http()


def old_style_app() -> tuple[socket.socket, int]:
    """An HTTP/1.0 app that ends its 1 MiB answer by closing the connection (no length)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"y" * MIB)

    threading.Thread(target=answer, daemon=True).start()
    return listener, listener.getsockname()[1]


async def test_an_answer_that_ends_with_the_connection_is_passed_on_whole():
    listener, app_port = old_style_app()
    front, port = serve(web.Application([(r"/.*", Proxy, {"port": app_port})]))
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/page")
        assert response.code == 200
        assert response.body == b"y" * MIB
    finally:
        front.stop()
        listener.close()


async def test_an_app_that_refuses_connections_gets_a_503_with_a_message():
    with socket.create_server(("127.0.0.1", 0)) as s:
        app_port = s.getsockname()[1]  # closed again: nothing listens there
    front, port = serve(web.Application([(r"/.*", Proxy, {"port": app_port})]))
    try:
        response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/page", raise_error=False)
        assert response.code == 503
        assert response.reason == "Service Unavailable"
    finally:
        front.stop()
