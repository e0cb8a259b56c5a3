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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tornado import httputil, iostream
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.tcpclient import TCPClient

CHUNK = 64 * 1024  # bytes read from either side at a time
# The app's responses are streamed, never held, so their length is not limited here.
NO_LIMIT = 2**62

OnHeaders = Callable[[httputil.ResponseStartLine, httputil.HTTPHeaders], None]
OnChunk = Callable[[bytes], Awaitable[None]]


class AppUnreachable(Exception):
    """The app refused the connection or closed it before answering."""


class _Relay(httputil.HTTPMessageDelegate):
    """Hands the app's response to the viewer's handler; awaiting each chunk pauses the read."""

    def __init__(self, on_headers: OnHeaders, on_chunk: OnChunk) -> None:
        self.on_headers = on_headers
        self.on_chunk = on_chunk
        self.answered = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        if start_line.code >= 200:  # a 1xx is followed by the real answer
            self.answered = True
            self.on_headers(start_line, headers)

    async def data_received(self, chunk: bytes) -> None:
        await self.on_chunk(chunk)


class UpstreamRequest:
    """A request to the app: headers on :meth:`open`, body by :meth:`write`, then :meth:`relay`."""

    def __init__(self, stream: iostream.IOStream, connection: HTTP1Connection) -> None:
        self.stream = stream
        self.connection = connection

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
        """Connect to the app and send the request line and headers (one request per connection)."""
        try:
            stream = await TCPClient().connect(
                "127.0.0.1", port, timeout=connect_timeout, max_buffer_size=4 * CHUNK
            )
        except (OSError, iostream.StreamClosedError, TimeoutError) as e:
            raise AppUnreachable(str(e) or type(e).__name__) from None
        stream.set_nodelay(True)
        params = HTTP1ConnectionParameters(
            no_keep_alive=True, chunk_size=CHUNK, max_body_size=NO_LIMIT, decompress=False
        )
        connection = HTTP1Connection(stream, True, params)
        headers["Connection"] = "close"
        try:
            await connection.write_headers(
                httputil.RequestStartLine(method, uri, "HTTP/1.1"), headers
            )
        except iostream.StreamClosedError:
            raise AppUnreachable("the app closed the connection") from None
        return cls(stream, connection)

    async def write(self, chunk: bytes) -> None:
        """Send a piece of the request body; returns once the app's socket took it."""
        await self.connection.write(chunk)

    async def relay(self, on_headers: OnHeaders, on_chunk: OnChunk) -> None:
        """End the request and pass the response on, chunk by chunk.

        Raises :class:`AppUnreachable` when the app closed the connection
        before its response began; errors of the viewer's side (a closed
        connection while flushing) pass through.
        """
        relay = _Relay(on_headers, on_chunk)
        try:
            self.connection.finish()
            await self.connection.read_response(relay)
        except iostream.StreamClosedError:
            if not relay.answered and self.stream.closed():
                raise AppUnreachable("the app closed the connection before answering") from None
            raise
        if not relay.answered:  # a malformed answer: tornado closed the connection
            raise AppUnreachable("the app's answer was not HTTP")

    def close(self) -> None:
        self.stream.close()
