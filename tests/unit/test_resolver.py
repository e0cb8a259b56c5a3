"""The address-first resolver: addresses answered in place, names as tornado resolves them."""

import asyncio
import socket

import pytest
from tornado import httpserver, netutil, web
from tornado.httpclient import AsyncHTTPClient
from tornado.netutil import Resolver

from hub_viz.resolver import AddressFirstResolver, use_address_first_resolver

pytestmark = pytest.mark.unit


def test_addresses_are_answered_without_a_thread():
    async def scenario():
        resolver = AddressFirstResolver()
        v4 = await resolver.resolve("127.0.0.1", 8081)
        v6 = await resolver.resolve("::1", 80)
        v6_bracketed = await resolver.resolve("[::1]", 80, socket.AF_INET6)
        # asyncio made no executor: nothing went through getaddrinfo's thread pool
        return v4, v6, v6_bracketed, asyncio.get_running_loop()._default_executor

    v4, v6, v6_bracketed, executor = asyncio.run(scenario())
    assert v4 == [(socket.AF_INET, ("127.0.0.1", 8081))]
    assert v6 == v6_bracketed == [(socket.AF_INET6, ("::1", 80, 0, 0))]
    assert executor is None


def test_names_are_resolved_as_tornado_does():
    async def scenario():
        return await AddressFirstResolver().resolve("localhost", 8081, socket.AF_INET)

    assert (socket.AF_INET, ("127.0.0.1", 8081)) in asyncio.run(scenario())


def test_an_address_of_another_family_is_refused_as_getaddrinfo_does():
    async def scenario():
        await AddressFirstResolver().resolve("127.0.0.1", 80, socket.AF_INET6)

    with pytest.raises(OSError, match="not an address of family"):
        asyncio.run(scenario())


class Hello(web.RequestHandler):
    def get(self) -> None:
        self.finish("hello")


def test_a_client_reaches_a_server_at_an_address_with_no_thread():
    previous = Resolver.configured_class()
    use_address_first_resolver()
    try:

        async def scenario():
            sockets = netutil.bind_sockets(0, "127.0.0.1")
            port = sockets[0].getsockname()[1]
            server = httpserver.HTTPServer(web.Application([(r"/", Hello)]))
            server.add_sockets(sockets)
            try:
                client = AsyncHTTPClient(force_instance=True)
                response = await client.fetch(f"http://127.0.0.1:{port}/")
                client.close()
            finally:
                server.stop()
            return response.body, asyncio.get_running_loop()._default_executor

        body, executor = asyncio.run(scenario())
    finally:
        Resolver.configure(previous)
    assert body == b"hello"
    assert executor is None
