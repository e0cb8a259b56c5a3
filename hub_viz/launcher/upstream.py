"""One HTTP request to the app on localhost, streamed both ways with backpressure.

tornado's ``AsyncHTTPClient`` reads a response as fast as the app sends it
(its streaming callback cannot pause the read), so a viewer who reads slowly
makes the launcher hold the whole response. This drives tornado's HTTP/1.1
connection directly instead:

- a chunk of the viewer's request body is written to the app before the next
  is read from the viewer (:meth:`UpstreamRequest.write`);
- a chunk of the app's response is flushed to the viewer before the next is
  read from the app (the relay's ``on_chunk`` is awaited).

So a request holds at most about one :data:`CHUNK` per direction, whatever the
size of the body or the speed of either side.

Connections to the app are kept alive for requests without a body that a
browser may repeat (``GET``, ``HEAD``, ``OPTIONS``: pages, scripts, images):
each saves a connect and the app's accept, about a third of what the launcher
adds to a page. They are taken from :class:`AppConnections` (checked with a
peek that the app has not closed them meanwhile) and given back only after a
complete answer the app did not mark ``Connection: close``. If the app closed
a reused connection just as the request went out (its keep-alive timer), the
request is sent again once on a new connection: nothing of it was answered.
Any other request gets a connection of its own, closed after the answer.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from tornado import httputil, iostream
from tornado.http1connection import (
    HTTP1Connection,
    HTTP1ConnectionParameters,
    is_transfer_encoding_chunked,
)

CHUNK = 64 * 1024  # bytes read from either side at a time
# The app's responses are streamed, never held, so their length is not limited here.
NO_LIMIT = 2**62
REPEATABLE = frozenset({"GET", "HEAD", "OPTIONS"})  # methods sent on kept-alive connections
MOST_IDLE = 8  # idle connections kept per app

OnHeaders = Callable[[httputil.ResponseStartLine, httputil.HTTPHeaders], None]
OnChunk = Callable[[bytes], Awaitable[None]]


class AppUnreachable(Exception):
    """The app refused the connection or closed it before answering."""


async def connect(port: int, timeout: float) -> iostream.IOStream:
    """A new connection to the app on 127.0.0.1 (no resolver: no thread hop)."""
    stream = iostream.IOStream(socket.socket(socket.AF_INET), max_buffer_size=4 * CHUNK)
    try:
        await asyncio.wait_for(stream.connect(("127.0.0.1", port)), timeout)
    except (OSError, iostream.StreamClosedError, asyncio.TimeoutError) as e:
        stream.close()
        real = getattr(e, "real_error", None) or e
        raise AppUnreachable(str(real) or type(real).__name__) from None
    stream.set_nodelay(True)
    return stream


def still_open(stream: iostream.IOStream) -> bool:
    """An idle connection the app has neither closed nor sent anything on."""
    if stream.closed():
        return False
    try:
        stream.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False  # b"": closed by the app; or bytes nobody asked for


class AppConnections:
    """Idle kept-alive connections to one app port, most recently used first."""

    def __init__(self, most_idle: int = MOST_IDLE) -> None:
        self.most_idle = most_idle
        self.idle: list[iostream.IOStream] = []

    def take(self) -> iostream.IOStream | None:
        while self.idle:
            stream = self.idle.pop()
            if still_open(stream):
                return stream
            stream.close()
        return None

    def give(self, stream: iostream.IOStream) -> None:
        kept = []
        for idle in self.idle:
            if still_open(idle):
                kept.append(idle)
            else:
                idle.close()
        self.idle = kept
        if len(self.idle) < self.most_idle and still_open(stream):
            self.idle.append(stream)
        else:
            stream.close()

    def close(self) -> None:
        for stream in self.idle:
            stream.close()
        self.idle = []


_POOLS: dict[int, AppConnections] = {}


def connections(port: int) -> AppConnections:
    """The idle connections to the app on ``port``."""
    return _POOLS.setdefault(port, AppConnections())


class _Relay(httputil.HTTPMessageDelegate):
    """Hands the app's response to the viewer's handler; awaiting each chunk pauses the read."""

    def __init__(self, on_headers: OnHeaders, on_chunk: OnChunk, method: str) -> None:
        self.on_headers = on_headers
        self.on_chunk = on_chunk
        self.method = method
        self.answered = False
        self.keep_alive = False  # the answer lets the connection serve another request

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        if start_line.code >= 200:  # a 1xx is followed by the real answer
            self.answered = True
            self.keep_alive = (
                start_line.version == "HTTP/1.1"
                and headers.get("Connection", "").lower() != "close"
                and (
                    "Content-Length" in headers
                    or is_transfer_encoding_chunked(headers)
                    or start_line.code in (204, 304)
                    or self.method == "HEAD"
                )
            )
            self.on_headers(start_line, headers)

    async def data_received(self, chunk: bytes) -> None:
        await self.on_chunk(chunk)


class UpstreamRequest:
    """A request to the app: headers on :meth:`open`, body by :meth:`write`, then :meth:`relay`."""

    def __init__(
        self,
        port: int,
        start_line: httputil.RequestStartLine,
        headers: httputil.HTTPHeaders,
        keep_alive: bool,
    ) -> None:
        self.port = port
        self.start_line = start_line
        self.headers = headers
        self.keep_alive = keep_alive  # on a kept-alive connection (a bodiless repeatable request)
        self.stream: iostream.IOStream | None = None
        self.connection: HTTP1Connection | None = None
        self.reused = False  # the connection served a request before
        self.reusable = False  # set once a complete answer left the connection usable

    @classmethod
    async def open(
        cls,
        port: int,
        method: str,
        uri: str,
        headers: httputil.HTTPHeaders,
        *,
        connect_timeout: float = 10,
    ) -> UpstreamRequest:
        """Connect to the app (or take a kept-alive connection) and send the request line and
        headers (no body yet)."""
        keep_alive = (
            method in REPEATABLE
            and "Content-Length" not in headers
            and "Transfer-Encoding" not in headers
        )
        if not keep_alive:
            headers["Connection"] = "close"
        request = cls(port, httputil.RequestStartLine(method, uri, "HTTP/1.1"), headers, keep_alive)
        stream = connections(port).take() if keep_alive else None
        await request._send_headers(stream, connect_timeout)
        return request

    async def _send_headers(self, stream: iostream.IOStream | None, timeout: float) -> None:
        self.reused = stream is not None
        if stream is None:
            stream = await connect(self.port, timeout)
        self.stream = stream
        params = HTTP1ConnectionParameters(
            no_keep_alive=not self.keep_alive,
            chunk_size=CHUNK,
            max_body_size=NO_LIMIT,
            decompress=False,
        )
        self.connection = HTTP1Connection(stream, True, params)
        try:
            await self.connection.write_headers(self.start_line, self.headers)
        except iostream.StreamClosedError:
            if self.reused:  # closed by the app while idle: a new connection
                stream.close()
                await self._send_headers(None, timeout)
                return
            raise AppUnreachable("the app closed the connection") from None

    async def write(self, chunk: bytes) -> None:
        """Send a piece of the request body; returns once the app's socket took it."""
        assert self.connection is not None
        await self.connection.write(chunk)

    async def relay(self, on_headers: OnHeaders, on_chunk: OnChunk) -> None:
        """End the request and pass the response on, chunk by chunk.

        Raises :class:`AppUnreachable` when the app closed the connection
        before its response began; errors of the viewer's side (a closed
        connection while flushing) pass through.
        """
        relay = _Relay(on_headers, on_chunk, self.start_line.method)
        assert self.connection is not None and self.stream is not None
        try:
            self.connection.finish()
            complete = await self.connection.read_response(relay)
        except iostream.StreamClosedError:
            if not relay.answered and self.stream.closed():
                if self.reused:  # the app closed it as it went out: once more, on a new one
                    await self._again()
                    await self.relay(on_headers, on_chunk)
                    return
                raise AppUnreachable("the app closed the connection before answering") from None
            raise
        if not relay.answered:  # a malformed answer: tornado closed the connection
            if self.reused and self.stream.closed():
                await self._again()
                await self.relay(on_headers, on_chunk)
                return
            raise AppUnreachable("the app's answer was not HTTP")
        self.reusable = (
            self.keep_alive and complete and relay.keep_alive and not self.stream.closed()
        )

    async def _again(self) -> None:
        assert self.stream is not None
        self.stream.close()
        await self._send_headers(None, 10)

    def close(self) -> None:
        """Give a connection that may serve again back to the pool, else close it."""
        if self.reusable and self.connection is not None:
            connections(self.port).give(self.connection.detach())
        elif self.stream is not None:
            self.stream.close()
        self.reusable = False
        self.connection = None
        self.stream = None
