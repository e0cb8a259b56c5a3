"""Proxy HTTP requests and websockets from viewers to the app on localhost.

Pure header helpers first, then the tornado handler. The app only ever sees
requests that the launcher has authenticated; the hub's cookies and the
viewer's tokens are stripped before a request reaches it, and its own
private token (if the framework needs one) is added. Otherwise the app sees
the request as it would bare (public ``Host``, the viewer's ``Origin``,
caching headers), with forwarding headers set by the launcher alone, and
its answer's caching headers reach the viewer unchanged. Which Jupyter routes a
viewer may reach, and which kernel messages pass a Voilà kernel websocket,
is decided in :mod:`hub_viz.launcher.kernel_filter`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from tornado import http1connection, httputil, iostream, web, websocket
from tornado.httpclient import HTTPRequest

from . import kernel_filter, sessions
from .activity import is_real_use
from .app_headers import is_reserved_cookie, public_refresh, public_url, set_cookie_refusal
from .forwarded import viewer_address_and_scheme
from .upstream import AppUnreachable, UpstreamRequest

log = logging.getLogger("hub_viz.launcher")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
# Websocket handshake headers that tornado's client writes itself.
WEBSOCKET_HANDSHAKE = frozenset(
    h.lower()
    for h in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
    )
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 6265 cookie-name: an HTTP token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class AppDown(web.HTTPError):
    """The app does not answer: it stopped or is being restarted (503), or broke off (502)."""

    def __init__(self, status_code: int = 503) -> None:
        super().__init__(
            status_code,
            "The dashboard is not answering: it stopped or is restarting. Try again in a moment.",
        )


def has_body(headers: httputil.HTTPHeaders) -> bool:
    """The request announces a body (a length above zero, or chunks)."""
    length = headers.get("Content-Length", "0").strip()
    return "Transfer-Encoding" in headers or length not in ("", "0")


def is_hub_cookie(name: str) -> bool:
    """Cookies that carry hub, service or hub_viz credentials; the app must never see them."""
    return is_reserved_cookie(name)


def without_frame_ancestors(policy: str) -> str:
    """An app's ``Content-Security-Policy`` minus ``frame-ancestors``.

    The launcher's own header names who may frame the dashboard (the service's
    open page on the isolated layout, embed origins); an app's ``'self'``
    (JupyterLab's, say) would refuse them.
    """
    kept = [
        d.strip()
        for d in policy.split(";")
        if d.strip() and d.split()[0].lower() != "frame-ancestors"
    ]
    return "; ".join(kept)


def filter_cookie_header(value: str) -> str:
    """Drop the hub's cookies from a ``Cookie`` header, keep the app's own.

    Split on ``;`` as browsers send it, not by cookie quoting rules: a value
    that opens a quote must not carry the next (hub) cookie along with it.
    """
    kept = []
    for piece in value.split(";"):
        name, sep, _ = piece.strip().partition("=")
        name = name.strip()
        if not sep or not _COOKIE_NAME.fullmatch(name) or is_hub_cookie(name):
            continue
        kept.append(piece.strip())
    return "; ".join(kept)


def same_origin(origin: str, host: str) -> bool:
    """True when ``origin``'s host:port is the request's ``Host``."""
    return urlsplit(origin).netloc.lower() == host.lower()


# Headers by which a proxy tells an app who asked, over which scheme and for which host.
# The viewer's are never passed on: the launcher sets its own (frameworks trust them
# from 127.0.0.1, where only the launcher connects; see builtin_frameworks.py).
FORWARDING_HEADERS = frozenset(
    {
        "forwarded",
        "x-real-ip",
        "x-scheme",
        "x-url-scheme",
        "front-end-https",
        "x-client-ip",
        "x-cluster-client-ip",
        "true-client-ip",
        "x-original-host",
        "x-host",
    }
)


def is_forwarding_header(name: str) -> bool:
    lower = name.lower()
    return lower in FORWARDING_HEADERS or lower.startswith("x-forwarded-")


def upstream_headers(
    headers: httputil.HTTPHeaders,
    *,
    host: str,
    protocol: str,
    remote_ip: str,
    app_token: str = "",
    drop: Iterable[str] = (),
) -> httputil.HTTPHeaders:
    """Headers to send to the app for a viewer's request.

    The app sees the request as it would bare: the public ``Host``, the
    viewer's ``Origin`` and ``Referer``, caching headers as sent. The hub's
    cookies and credentials are dropped, and so is any forwarding header the
    viewer sent: ``X-Forwarded-For``/``-Proto``/``-Host`` are the launcher's own
    (the viewer's address, the public scheme and host).
    """
    dropped = HOP_BY_HOP | {d.lower() for d in drop} | {"host", "authorization", "cookie"}
    out = httputil.HTTPHeaders()
    for name, value in headers.get_all():
        lower = name.lower()
        if lower in dropped or is_forwarding_header(lower):
            continue
        out.add(name, value)
    cookie = filter_cookie_header("; ".join(headers.get_list("Cookie")))
    if cookie:
        out["Cookie"] = cookie
    out["Host"] = host
    out["X-Forwarded-Host"] = host
    out["X-Forwarded-Proto"] = protocol
    out["X-Forwarded-For"] = remote_ip
    if app_token:
        out["Authorization"] = f"token {app_token}"
    return out


class ProxyMixin:
    """HTTP and websocket proxying for a ``WebSocketHandler`` subclass.

    The handler provides ``app_port``, ``app_token`` and ``note_activity()``,
    called for page navigations and new websocket connections only
    (:func:`~hub_viz.launcher.activity.is_real_use`). The launcher's handler
    also has ``ctx`` (framework, owner) and ``is_owner()``, from which
    :meth:`jupyter_rules` picks the viewer's Jupyter rules; without them (a
    bare proxy) the app is taken to have no Jupyter server.
    """

    app_port: int
    app_token: str

    def note_activity(self) -> None:  # pragma: no cover - provided by the handler
        raise NotImplementedError

    # -- what of a Jupyter server the viewer may reach -------------------------

    @property
    def proxy_prefix(self) -> str:
        """The server's URL prefix (``/`` for a bare proxy)."""
        ctx = getattr(self, "ctx", None)
        return ctx.prefix if ctx is not None else "/"

    def viewer(self) -> dict | None:
        return self.current_user  # type: ignore[attr-defined]

    def jupyter_rules(self) -> str:
        """:func:`kernel_filter.rules_for` this request's viewer."""
        ctx = getattr(self, "ctx", None)
        if ctx is None:
            return kernel_filter.UNFILTERED
        user = self.viewer()
        is_owner = bool(user) and self.is_owner(user)  # type: ignore[attr-defined]
        return kernel_filter.rules_for(ctx.framework.jupyter_api, ctx.mode, is_owner)

    def check_jupyter_route(self, *, websocket: bool = False) -> kernel_filter.Decision:
        """Decide this request; a refusal is logged (the route and the viewer, no query)."""
        request = self.request  # type: ignore[attr-defined]
        decision = kernel_filter.decide(
            self.jupyter_rules(),
            request.method,
            request.path,
            self.proxy_prefix,
            websocket=websocket,
        )
        if not decision.allowed:
            log.warning(
                "Refused %s %s for %s: %s",
                "websocket" if websocket else request.method,
                kernel_filter.loggable(request.path, 200),
                kernel_filter.viewer_label(self.viewer()),
                decision.reason,
            )
        return decision

    def viewer_origin(self) -> dict[str, str]:
        """``protocol`` and ``remote_ip`` of this request for :func:`upstream_headers`.

        The launcher's application has set both to what it trusts
        (:class:`~hub_viz.launcher.forwarded.TrustedOrigin`); a bare proxy reads
        the hub proxy's entries here.
        """
        request = self.request  # type: ignore[attr-defined]
        if getattr(request, "origin_trusted", False):
            return {"protocol": request.protocol, "remote_ip": request.remote_ip or ""}
        context = request.connection.context if request.connection is not None else None
        ip, protocol = viewer_address_and_scheme(
            request.headers,
            getattr(context, "_orig_remote_ip", None) or request.remote_ip or "",
            getattr(context, "_orig_protocol", None) or request.protocol,
        )
        return {"protocol": protocol, "remote_ip": ip}

    def check_same_origin(self) -> None:
        """Refuse cross-site writes: an unsafe method must come from the hub's own origin."""
        request = self.request  # type: ignore[attr-defined]
        if request.method in SAFE_METHODS:
            return
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise web.HTTPError(403, "Cross-origin request refused.")
        origin = request.headers.get("Origin") or request.headers.get("Referer")
        if origin and not same_origin(origin, request.host):
            raise web.HTTPError(403, "Cross-origin request refused.")

    def app_may_set_cookie(self, value: str) -> bool:
        """The app's ``Set-Cookie`` passes unless it could reach beyond this server (logged)."""
        name, refusal = set_cookie_refusal(value, self.proxy_prefix)
        if refusal:
            log.warning(
                "Dropped a cookie the app set (%s): %s", kernel_filter.loggable(name, 80), refusal
            )
        return not refusal

    # -- HTTP -------------------------------------------------------------

    upstream_http: UpstreamRequest | None = None  # the request to the app, once opened

    async def open_upstream_http(self) -> UpstreamRequest:
        """Check the request and send its line and headers to the app (no body yet).

        A launcher with ``@stream_request_body`` calls this from ``prepare()``,
        before the viewer's body is read, and writes the body as it arrives
        (:meth:`write_upstream`); anything refused here never has its body read.
        """
        handler: web.RequestHandler = self  # type: ignore[assignment]
        request = handler.request
        self.check_same_origin()
        if not self.check_jupyter_route().allowed:
            raise web.HTTPError(403, "This is not part of the dashboard.")
        if is_real_use(request.method, request.headers):
            self.note_activity()
        headers = upstream_headers(
            request.headers,
            host=request.host,
            **self.viewer_origin(),
            app_token=self.app_token,
            drop=("Expect",),
        )
        if not has_body(request.headers) and request.method not in SAFE_METHODS:
            headers["Content-Length"] = str(len(request.body or b""))
        try:
            self.upstream_http = await UpstreamRequest.open(
                self.app_port, request.method, request.uri, headers
            )
        except AppUnreachable as e:
            log.warning(
                "The app did not take %s %s: %s",
                request.method,
                kernel_filter.loggable(request.path, 200),
                e,
            )
            raise AppDown() from None
        return self.upstream_http

    async def write_upstream(self, chunk: bytes) -> bool:
        """Pass a piece of the viewer's body on; False (and a 502 sent) if the app is gone."""
        upstream = self.upstream_http
        if upstream is None:
            return False
        try:
            await upstream.write(chunk)
            return True
        except (iostream.StreamClosedError, httputil.HTTPOutputError):
            self.close_upstream_http()
            handler: web.RequestHandler = self  # type: ignore[assignment]
            if not handler._finished:
                handler.send_error(502, exc_info=(AppDown, AppDown(502), None))
            return False

    def close_upstream_http(self) -> None:
        if self.upstream_http is not None:
            self.upstream_http.close()
            self.upstream_http = None

    async def proxy_http(self) -> None:
        """Forward the request to the app and stream its response back.

        Each chunk is flushed to the viewer before the next is read from the
        app: a slow reader slows the app's side down instead of filling memory.
        """
        handler: web.RequestHandler = self  # type: ignore[assignment]
        request = handler.request
        upstream = self.upstream_http
        if upstream is None:
            upstream = await self.open_upstream_http()
            if request.body:  # a handler that read the body whole (no @stream_request_body)
                await upstream.write(request.body)
        seen: set[str] = set()

        def on_headers(start: httputil.ResponseStartLine, headers: httputil.HTTPHeaders) -> None:
            handler.set_status(start.code, start.reason or None)
            handler.clear_header("Content-Type")
            handler.clear_header("Server")
            # Caching is the app's: its Cache-Control, ETag and Last-Modified pass as sent,
            # so revalidation (304) works as bare. An answer that says nothing is kept out
            # of shared caches only: it is for a viewer the launcher let in.
            handler.set_header("Cache-Control", "private")
            for name, value in headers.get_all():
                self._relay_header(name, value, seen)

        async def on_chunk(chunk: bytes) -> None:
            handler.write(chunk)
            await handler.flush()

        try:
            await upstream.relay(on_headers, on_chunk)
        except AppUnreachable as e:
            log.warning(
                "The app dropped %s %s: %s",
                request.method,
                kernel_filter.loggable(request.path, 200),
                e,
            )
            handler.clear()
            raise AppDown(502) from None
        except (iostream.StreamClosedError, httputil.HTTPInputError, httputil.HTTPOutputError):
            # the viewer left, or the app broke off mid-answer: nothing more can be sent
            if isinstance(request.connection, http1connection.HTTP1Connection):
                request.connection.close()
            handler._finished = True
            return
        finally:
            self.close_upstream_http()
        handler.finish()

    def _relay_header(self, name: str, value: str, seen: set[str]) -> None:
        """One header of the app's answer, as the viewer gets it (or not at all)."""
        handler: web.RequestHandler = self  # type: ignore[assignment]
        lower = name.lower()
        if lower in HOP_BY_HOP or lower == "content-length" and handler.request.method == "HEAD":
            return
        if lower == "set-cookie" and not self.app_may_set_cookie(value):
            return
        if lower in ("location", "content-location"):
            value = public_url(value, self.app_port, self.proxy_prefix)
        elif lower == "refresh":
            value = public_refresh(value, self.app_port, self.proxy_prefix)
        elif lower == "content-security-policy":  # ours decides framing; the rest stays
            value = without_frame_ancestors(value)
            if not value:
                return
        if lower in ("set-cookie", "content-security-policy") or lower in seen:
            handler.add_header(name, value)  # beside ours, or the app's repeated header
        else:
            handler.set_header(name, value)
            seen.add(lower)

    # -- websockets -------------------------------------------------------

    upstream_ws: websocket.WebSocketClientConnection | None = None
    # Set when the route is refused: the socket is closed on open, nothing connects upstream.
    ws_refused: str = ""
    # Set on a kernel websocket the viewer may only send widget messages on.
    message_filter: kernel_filter.KernelChannelFilter | None = None

    async def open_upstream_websocket(self) -> None:
        """Connect to the app's websocket with the viewer's subprotocols.

        A refused route connects nothing (:meth:`open` closes the socket); a
        filtered kernel channel offers the app only the subprotocols the
        filter decodes, so the framing of every frame is known.
        """
        handler: websocket.WebSocketHandler = self  # type: ignore[assignment]
        request = handler.request
        decision = self.check_jupyter_route(websocket=True)
        if not decision.allowed:
            self.ws_refused = decision.reason
            return
        protocols = [
            p.strip()
            for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        if decision.kernel_channel:
            protocols = [p for p in protocols if p in kernel_filter.KERNEL_SUBPROTOCOLS]
        headers = upstream_headers(
            request.headers,
            host=request.host,
            **self.viewer_origin(),
            app_token=self.app_token,
            drop=WEBSOCKET_HANDSHAKE,
        )
        url = f"ws://127.0.0.1:{self.app_port}{request.uri}"
        self.upstream_ws = await websocket.websocket_connect(
            HTTPRequest(url, headers=headers, connect_timeout=10, request_timeout=30),
            subprotocols=protocols or None,
            max_message_size=256 * 1024 * 1024,
        )
        if decision.kernel_channel:
            selected = self.upstream_ws.selected_subprotocol
            if selected is not None and selected not in protocols:
                self.upstream_ws.close()
                self.upstream_ws = None
                raise web.HTTPError(502, "The kernel chose a protocol that was not offered.")
            self.message_filter = kernel_filter.KernelChannelFilter(
                selected,
                kernel_filter.viewer_label(self.viewer()),
                kernel_filter.kernel_id_from_path(request.path),
            )

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        if self.upstream_ws is None:
            return None
        return self.upstream_ws.selected_subprotocol

    def open(self, *args: str, **kwargs: str) -> None:
        if self.ws_refused:
            # 1008: policy violation. The reason is the route's, never the viewer's data.
            self.close(1008, "Not part of this dashboard.")  # type: ignore[attr-defined]
            return
        # A new connection is use; its messages are not (a hidden tab keeps talking).
        request = self.request  # type: ignore[attr-defined]
        if is_real_use(request.method, request.headers, websocket=True):
            self.note_activity()
        if self.upstream_ws is not None:
            self._ws_relay = asyncio.ensure_future(self._relay_upstream(self.upstream_ws))

    async def on_message(self, message: str | bytes) -> None:
        # awaited by tornado before it reads the viewer's next message: a slow app
        # slows the viewer down instead of queueing their messages here
        upstream = self.upstream_ws
        if upstream is None:
            return
        if self.message_filter is not None and not self.message_filter.allows(message):
            return  # dropped: the kernel never sees it, the viewer gets nothing back
        try:
            await upstream.write_message(message, binary=isinstance(message, bytes))
        except (websocket.WebSocketClosedError, iostream.StreamClosedError):
            self.close()  # type: ignore[attr-defined]

    _ws_relay: asyncio.Future | None = None

    async def _relay_upstream(self, upstream: websocket.WebSocketClientConnection) -> None:
        """The app's messages to the viewer, one at a time: each is flushed before the next
        is read, so a viewer who does not read pauses the app's socket, not memory."""
        handler: websocket.WebSocketHandler = self  # type: ignore[assignment]
        while True:
            message = await upstream.read_message()
            if message is None:
                handler.close()
                return
            sessions.note_issued(handler, message)  # ids the app hands this viewer
            try:
                await handler.write_message(message, binary=isinstance(message, bytes))
            except (websocket.WebSocketClosedError, iostream.StreamClosedError):
                upstream.close()
                return

    def on_close(self) -> None:
        self.close_upstream_http()
        if self.message_filter is not None:
            self.message_filter.close()
        if self.upstream_ws is not None:
            self.upstream_ws.close()
            self.upstream_ws = None
