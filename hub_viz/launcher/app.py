"""``hub-viz-launch``: the small server in front of one dashboard app.

Routes, all under the server's prefix ``P`` (``/user/<owner>/<server>/``):

``P api``               the hub's readiness probe (deliberately public, no data)
``P oauth_callback``    the end of the hub OAuth login
``P _hub_viz/status``   start-up state for the start-up page and the spawner
``P _hub_viz/enter``    trades a one-time open grant from the hub_viz service
                        for this dashboard's viewer cookie
``P ...``               everything else: the app, for viewers with the server's
                        access scope (a start-up page while the app boots)
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import math
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jupyterhub
from tornado import ioloop, web, websocket
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.httputil import url_concat
from tornado.iostream import IOStream, StreamClosedError
from tornado.log import LogFormatter, access_log
from tornado.tcpclient import TCPClient

from .. import __version__
from ..errors import HubVizError
from ..frameworks import SHARED, Framework, build_command, with_command
from ..resolver import use_address_first_resolver
from . import kernel_filter, workdir
from .access import AccessCheck, AccessUnknown
from .activity import ActivityReporter
from .forwarded import TrustedOrigin
from .grants import FrameAncestors, GrantKeeper
from .hublogin import HubLogin, LazyRoute, callback_handler, login_handler
from .ownhost import LauncherApplication, OwnHost
from .ports import AppPort
from .process import AppProcess, AppState
from .proxy import AppDown, ProxyMixin, has_body
from .sessions import MAX_HELD_BODY, allow_body, allow_session, holds_body, redacted_path

if TYPE_CHECKING:  # imported when there is a git source: git, tempfile and shutil
    from .source import GitCheckout

log = logging.getLogger("hub_viz.launcher")

TEMPLATES = Path(__file__).parent / "templates"
OWN_ROUTES_MAX_BODY = 64 * 1024  # bytes: a body sent to a launcher route (not the app's)


@dataclass
class LauncherContext:
    """What every handler needs: the app, the reporter and who owns the server."""

    app: AppProcess
    app_port: int
    app_token: str
    page_path: str
    framework: Framework
    reporter: ActivityReporter
    owner: str
    server_token: str
    grants: GrantKeeper
    open_url: str = ""
    frame_ancestors: FrameAncestors | None = None
    prefix: str = "/"  # the server's URL prefix
    mode: str = SHARED  # shared or per-viewer, as the spawner set it
    author: str = ""  # the dashboard's author (HUB_VIZ_AUTHOR); the server owner if unset
    hub_login: HubLogin | None = None  # HubOAuth, imported on first use
    access: AccessCheck | None = None  # re-asks the service about cookie viewers
    checkout: GitCheckout | None = None  # the git source, when there is one
    max_body_size: int = 64 * 1024 * 1024  # the largest request body streamed to the app


class BaseHandler(web.RequestHandler):
    """Common helpers: the context, who the viewer is, owner checks and JSON errors."""

    _hub_auth_user_cache: dict[str, Any] | None  # set once resolved (absent before)

    @property
    def ctx(self) -> LauncherContext:
        return self.settings["hub_viz"]

    def is_server_token(self) -> bool:
        """The request carries this server's own API token (the spawner's status probe)."""
        auth = self.request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        return (
            scheme.lower() in ("token", "bearer")
            and bool(self.ctx.server_token)
            and hmac.compare_digest(token.strip(), self.ctx.server_token)
        )

    async def resolve_user(self) -> dict[str, Any] | None:
        """The hub user or service behind this request, resolved without blocking.

        Raises 403 when the hub knows the user but the server's access scope
        is missing; returns None when nobody is logged in.
        """
        if hasattr(self, "_hub_auth_user_cache"):
            return self._hub_auth_user_cache
        viewer = self.ctx.grants.viewer_from_cookie(self)
        if viewer is not None and await self.still_allowed(viewer):
            self._hub_auth_user_cache = viewer
            return viewer
        hub_login = self.ctx.hub_login
        model = await hub_login.user(self) if hub_login is not None else None
        self._hub_auth_user_cache = model
        return model

    access_withdrawn = False  # set when this request's cookie viewer lost access

    async def still_allowed(self, viewer: dict[str, Any]) -> bool:
        """Has the service not withdrawn a cookie viewer's access? (Asked once per interval.)"""
        access = self.ctx.access
        if access is None:
            return True
        try:
            allowed = await access.allowed(viewer["name"] or "")
        except AccessUnknown:
            raise web.HTTPError(
                503,
                "The dashboard service could not confirm that you may see this "
                "dashboard; try again in a moment.",
            ) from None
        if not allowed:
            log.info(
                "Refused the viewer cookie of %s: the service withdrew their access",
                kernel_filter.viewer_label(viewer),
            )
            self.ctx.grants.clear_cookie(self)
            self.access_withdrawn = True
        return allowed

    def get_current_user(self) -> dict[str, Any] | None:
        return getattr(self, "_hub_auth_user_cache", None)

    def is_owner(self, user: dict[str, Any] | None) -> bool:
        """The viewer owns this server (a per-viewer instance's viewer does)."""
        return self._is_named(user, self.ctx.owner)

    def is_author(self, user: dict[str, Any] | None) -> bool:
        """The viewer wrote the dashboard: who may read its log and failure reason."""
        return self._is_named(user, self.ctx.author or self.ctx.owner)

    @staticmethod
    def _is_named(user: dict[str, Any] | None, name: str) -> bool:
        return (
            user is not None
            and user.get("kind", "user") in ("user", "grant")
            and user.get("name") == name
        )

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        ancestors = self.ctx.frame_ancestors
        self.set_header(
            "Content-Security-Policy",
            ancestors.header if ancestors is not None else "frame-ancestors 'self'",
        )

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message, "source": "hub-viz"}))


class ProbeHandler(BaseHandler):
    """``P api``: answers the hub's readiness probe as soon as the launcher listens.

    To the service (a grant in the ``Authorization`` header) or the server's
    own token it also says whether the app answers now (``app``: ``ready``,
    ``starting``, ``failed``, ``exited`` or ``not answering``): the service
    asks before it sends viewers to a server the hub calls ready.
    """

    def set_default_headers(self) -> None:
        pass

    async def get(self) -> None:
        body: dict[str, Any] = {"version": __version__}
        if self.is_server_token() or self.ctx.grants.header_grant(self) is not None:
            app = self.ctx.app
            state = app.state.value
            if app.state is AppState.READY and not await app_accepts(self.ctx.app_port):
                state = "not answering"
            body["app"] = state
            if state == AppState.READY.value and self.ctx.framework.pool_status_path:
                pool = await app_pool(self.ctx)
                if pool is not None:
                    body["pool"] = pool
            self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json")
        self.set_header("X-JupyterHub-Version", jupyterhub.__version__)
        self.finish(json.dumps(body))


POOL_FIELDS = (
    "ready",
    "starting",
    "base",
    "burst",
    "target",
    "cap",
    "estimate_seconds",
    "measured",
)


async def app_pool(ctx: LauncherContext) -> dict[str, Any] | None:
    """The app's preheated pool (``Framework.pool_status_path``): its counts and times only."""
    url = f"http://127.0.0.1:{ctx.app_port}{ctx.prefix}{ctx.framework.pool_status_path}"
    headers = {"Authorization": f"token {ctx.app_token}"} if ctx.app_token else {}
    try:
        response = await AsyncHTTPClient().fetch(
            url, headers=headers, request_timeout=2, raise_error=False
        )
        data = json.loads(response.body) if response.code == 200 else None
    except (OSError, ValueError):
        return None
    return pool_fields(data) if isinstance(data, dict) else None


def pool_fields(data: dict[str, Any]) -> dict[str, Any]:
    """What the service may read of an app's pool answer (the app is the author's code):
    the known fields with finite numbers or booleans only (JSON's ``Infinity`` and
    ``NaN`` parse in Python and would break the service's arithmetic)."""
    return {
        k: v
        for k in POOL_FIELDS
        if isinstance(v := data.get(k), bool) or (isinstance(v, (int, float)) and math.isfinite(v))
    }


async def app_accepts(port: int, timeout: float = 2) -> bool:
    """The app takes connections on its port (it may still be slow to answer)."""
    try:
        stream = await TCPClient().connect("127.0.0.1", port, timeout=timeout)
    except (OSError, StreamClosedError, TimeoutError):
        return False
    stream.close()
    return True


class EnterHandler(BaseHandler):
    """``P _hub_viz/enter?grant_token=…``: a viewer sent by the service's open flow.

    (A parameter name with 'token' in it: JupyterHub scrubs those from its logs
    when it answers such a URL itself, e.g. while the server is not routed.)
    """

    def get(self) -> None:
        self.set_header("Referrer-Policy", "no-referrer")
        token = self.get_query_argument("grant_token", "")
        claims = self.ctx.grants.redeem(token)
        if claims is None:
            if self.ctx.open_url:
                self.redirect(self.ctx.open_url)
                return
            raise web.HTTPError(
                403, "This link is invalid or has expired; open the dashboard again."
            )
        self.ctx.grants.set_cookie(
            self, claims.get("sub") or "", bool(claims.get("embed")), bool(claims.get("page"))
        )
        if self.ctx.access is not None:
            self.ctx.access.vouched(claims.get("sub") or "")
        # the page below the prefix a bookmark or link asked for (see full_window_url)
        self.redirect(inside_prefix(self.ctx.prefix, self.get_query_argument("next", "")))


class StatusHandler(BaseHandler):
    """``P _hub_viz/status``: state for viewers; log tail and reason for the author.

    The author is the dashboard's, not the server's owner: the viewer of a
    per-viewer instance owns the server but gets the state only.
    """

    async def get(self) -> None:
        author = self.ctx.author or self.ctx.owner
        privileged = self.is_server_token() or self.ctx.grants.header_is_owner(self, author)
        if not privileged:
            user = await self.resolve_user()
            if user is None:
                raise web.HTTPError(403, "Log in to see this dashboard's status.")
            privileged = self.is_author(user)
        app = self.ctx.app
        await wait_while_starting(app, self.get_argument("wait", ""))
        body: dict[str, Any] = {
            "state": app.state.value,
            "framework": self.ctx.framework.display_name,
            "elapsed": round(app.elapsed, 2),
        }
        if self.ctx.checkout is not None and self.ctx.checkout.fetching:
            body["phase"] = "fetching"
        if privileged:
            body["message"] = app.message
            body["log"] = list(app.tail)
        elif app.state is AppState.FAILED:
            body["message"] = "The dashboard could not start. Its owner can see why."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


STATUS_WAIT_MOST = 5.0  # seconds a status request may wait for the app's start


async def wait_while_starting(app: AppProcess, wait: str) -> None:
    """``?wait=S`` on the status: answer once the app is no longer starting, or after S
    seconds (at most :data:`STATUS_WAIT_MOST`), so that the spawner asks once a second
    instead of five times (a class starting thirty instances at once)."""
    try:
        seconds = min(float(wait), STATUS_WAIT_MOST) if wait else 0.0
    except ValueError:
        seconds = 0.0
    deadline = asyncio.get_running_loop().time() + seconds
    # a local check every 50 ms (AppProcess has no event for its state; it costs nothing)
    while app.state is AppState.STARTING and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


@web.stream_request_body
class AppHandler(BaseHandler, ProxyMixin, websocket.WebSocketHandler):
    """Everything else under the prefix: the app itself, for allowed viewers.

    Request bodies are streamed (``@stream_request_body``): the viewer is
    checked in :meth:`prepare`, before a byte of the body is read, and the body
    goes to the app chunk by chunk as it arrives; the launcher never holds it.
    """

    @property
    def app_port(self) -> int:  # type: ignore[override]
        return self.ctx.app_port

    @property
    def app_token(self) -> str:  # type: ignore[override]
        return self.ctx.app_token

    def note_activity(self) -> None:
        # With an open page, only its pings (visible and focused) say someone looks:
        # page loads, websockets and requests here count for nothing (docs/explanation/
        # activity.md). A server started without the service has no page to ping from.
        if not self.ctx.open_url:
            self.ctx.reporter.note()

    async def prepare(self) -> None:
        """A request with a body is let in (or refused) here, before its body is read.

        One without a body is let in by the handler method instead: an answer
        given in ``prepare()`` of a body-streaming handler makes tornado close
        the connection (it has not read the, empty, body yet), and a proxy that
        keeps connections alive would then lose its next request on it.
        """
        if not has_body(self.request.headers):
            return
        # Tornado checks a body's length against this before reading it. Its own refusal
        # would come after ours on the same connection, so the cap (413) is checked below,
        # and a refused body is never read: the connection closes with the answer.
        length = self.request.headers.get("Content-Length", "")
        self.request.connection.set_max_body_size(  # type: ignore[union-attr]
            max(self.ctx.max_body_size, int(length) if length.isdigit() else 0)
        )
        self._close_gently_if_refused()
        await self.admit()
        if self._finished:
            return
        if holds_body(self.ctx.framework.session_binding, self.request):
            self._hold_body()  # it names a session: checked once read, in _http()
            return
        await self._start_upload()
        self.body_wanted = True

    admitted = False  # admit() let the viewer in

    async def admit(self) -> None:
        """Let an allowed viewer in; refuse (or send to the open page) anyone else."""
        if self.admitted:
            return
        if (
            self.request.method == "GET"
            and self.ctx.open_url
            and is_top_level(self.request)
            and not self.ctx.grants.page_cookie(self)
        ):
            # a bookmark, a shared link, a new tab: the dashboard opens in its open page
            # (the full window), which frames it and pings while someone looks; the
            # service's card capture alone gets the page itself
            self.redirect(full_window_url(self.ctx.open_url, self.ctx.prefix, self.request.uri))
            return
        websocket_upgrade = self._is_websocket()
        if not websocket_upgrade:
            self.check_same_origin()
        user = await self.resolve_user()
        if user is None:
            if self.request.method in ("GET", "HEAD") and not websocket_upgrade:
                # The service's open flow decides who may see the dashboard and
                # sends them back with a grant; without a service, hub login.
                self.redirect(self.ctx.open_url or self.login_url())
                return
            if self.access_withdrawn:
                raise web.HTTPError(
                    403, "You may no longer use this dashboard: its author changed who may see it."
                )
            raise web.HTTPError(403, "Log in through the hub to use this dashboard.")
        if not allow_session(self, user):  # a per-tab app session is its viewer's alone
            return
        self.admitted = True

    body_wanted = False  # prepare() let the request through: its body is read

    def finish(self, chunk: Any = None) -> Any:
        if not self.body_wanted and not self._headers_written and has_body(self.request.headers):
            self.set_header("Connection", "close")  # refused: its body is not read
        return super().finish(chunk)

    def _close_gently_if_refused(self) -> None:
        """A request refused before its body is read ends with :func:`linger_close`.

        Tornado closes such a connection as soon as the answer is written; the
        launcher takes the connection over at that moment instead (so the body
        is never read into a handler) and closes it gently.
        """
        connection = self.request.connection
        close = connection.close  # type: ignore[union-attr]

        def close_connection() -> None:
            if self.body_wanted:
                close()
                return
            stream = connection.detach()  # type: ignore[union-attr]
            if stream is not None:
                asyncio.ensure_future(linger_close(stream))

        connection.close = close_connection  # type: ignore[union-attr]

    held_body: bytearray | None = None  # a body read whole to check its session ids

    def _hold_body(self) -> None:
        self.check_app_answers()
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_HELD_BODY:
            raise web.HTTPError(
                413, f"This request is larger than the dashboard accepts ({MAX_HELD_BODY} bytes)."
            )
        self.held_body = bytearray()
        self.body_wanted = True

    def _held_body_allowed(self) -> bool:
        """A held body becomes the request's body, unless it names another's session."""
        if self.held_body is None:
            return True
        self.request.body = bytes(self.held_body)
        self.held_body = None
        return allow_body(self, self.request.body)

    async def _start_upload(self) -> None:
        """An allowed viewer's request with a body: open the app's side before reading it."""
        self.check_app_answers()
        limit = self.ctx.max_body_size
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise web.HTTPError(
                413,
                "This upload is larger than the dashboard accepts "
                f"({limit // (1024 * 1024)} MiB at most).",
            )
        if "Content-Length" not in self.request.headers and self.request.method not in (
            "POST",
            "PUT",
            "PATCH",
        ):
            raise web.HTTPError(411, "Send a Content-Length with this request's body.")
        await self.open_upstream_http()

    async def data_received(self, chunk: bytes) -> None:
        if self.held_body is not None:
            if len(self.held_body) + len(chunk) > MAX_HELD_BODY:
                self.held_body = None
                raise web.HTTPError(413, "This request is larger than the dashboard accepts.")
            self.held_body += chunk
            return
        # awaited before the next chunk is read: a slow app slows the upload down
        await self.write_upstream(chunk)

    def check_app_answers(self) -> None:
        """Refuse (before any body is read) while the app cannot take the request."""
        state = self.ctx.app.state
        if state is AppState.EXITED:
            raise AppDown(503)
        if state is not AppState.READY:
            raise web.HTTPError(503, "The dashboard is still starting.")

    def login_url(self) -> str:
        if self.ctx.hub_login is None:
            raise web.HTTPError(403, "Log in through the hub to use this dashboard.")
        return self.ctx.hub_login.login_url(self.request.uri or self.ctx.prefix)

    def check_xsrf_cookie(self) -> None:
        # Cookie logins are accepted for writes from this origin only (checked in
        # prepare); the app applies its own XSRF protection on top.
        self.check_same_origin()

    def _is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.admit()
        if self._finished or not self._held_body_allowed():
            return
        if self.upstream_http is not None:  # a GET with a body: already on its way
            await self.proxy_http()
            return
        if self._is_websocket():
            await self._get_websocket()
            return
        app = self.ctx.app
        if app.state is AppState.EXITED:
            raise AppDown(503)
        if app.state is not AppState.READY:
            self._render_startup()
            return
        prefix = self.ctx.prefix
        if self.request.path == prefix and self.ctx.page_path:
            query = ("?" + self.request.query) if self.request.query else ""
            self.redirect(prefix + self.ctx.page_path + query)
            return
        await self.proxy_http()

    async def _get_websocket(self) -> None:
        self.check_app_answers()
        try:
            await self.open_upstream_websocket()
        except Exception as e:
            log.warning("Websocket to the app failed: %s", e)
            raise web.HTTPError(502, "The dashboard app refused the connection.") from None
        await websocket.WebSocketHandler.get(self)

    def _render_startup(self) -> None:
        user = self.get_current_user()
        self.set_status(200 if self.ctx.app.state is AppState.STARTING else 503)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render(
            "startup.html",
            framework=self.ctx.framework.display_name,
            is_owner=self.is_author(user),
            status_url=self.ctx.prefix + "_hub_viz/status",
        )

    async def _http(self) -> None:
        await self.admit()
        if self._finished:  # refused, or the app went away during the upload
            return
        if not self._held_body_allowed():
            return
        if self.upstream_http is None:
            self.check_app_answers()
        await self.proxy_http()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if not isinstance(exc, AppDown):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Retry-After", "5")
        if "text/html" not in self.request.headers.get("Accept", ""):
            super().write_error(status_code, **kwargs)
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render(
            "restarting.html",
            framework=self.ctx.framework.display_name,
            open_url=self.ctx.open_url or self.ctx.prefix,
        )

    post = put = patch = delete = options = head = _http


async def linger_close(stream: IOStream, seconds: float = 5, most: int = 64 * 1024 * 1024) -> None:
    """Close a connection whose request body was refused unread, without losing the answer.

    Closing a socket with unread data resets it, and a proxy still sending
    the body may then lose the answer too; so the launcher sends its end of
    the connection and reads (and drops) what still comes, for ``seconds`` or
    ``most`` bytes at most, before it closes.
    """
    try:
        await stream.write(b"")  # the answer is out
        stream.socket.shutdown(socket.SHUT_WR)
        deadline = asyncio.get_running_loop().time() + seconds
        dropped = 0
        while dropped < most:
            left = deadline - asyncio.get_running_loop().time()
            chunk = await asyncio.wait_for(stream.read_bytes(64 * 1024, partial=True), left)
            dropped += len(chunk)
    except (StreamClosedError, OSError, asyncio.TimeoutError):
        pass
    finally:
        stream.close()


def is_top_level(request: Any) -> bool:
    """A browser loading this URL as a tab's page (not in a frame, not a fetch)."""
    return request.headers.get("Sec-Fetch-Dest", "").strip().lower() == "document"


def full_window_url(open_url: str, prefix: str = "", uri: str = "") -> str:
    """The open page without its bar: the full window a dashboard URL leads to, with the
    page asked for below the server's prefix (``path``), which the frame then opens."""
    query = {"chrome": "0"}
    rest = uri[len(prefix) :] if prefix and uri.startswith(prefix) else ""
    if rest:
        query["path"] = rest
    return url_concat(open_url, query)


def inside_prefix(prefix: str, path: str) -> str:
    """``prefix + path`` when ``path`` is a page below the prefix (not a URL), else ``prefix``."""
    if not path or path.startswith(("/", "\\")) or any(c in path for c in "\r\n\\"):
        return prefix
    return prefix + path


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter, given the terminal's width so that it does not import ``shutil``
    for it (with ``bz2`` and ``lzma``: a third of a MiB in every instance)."""
    try:
        width = os.get_terminal_size().columns - 2
    except OSError:  # not a terminal: the launcher's usual case
        width = 78
    return argparse.HelpFormatter(prog, width=width)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hub-viz-launch",
        formatter_class=help_formatter,
        description="Serve one dashboard behind JupyterHub: start the app, log viewers "
        "in with hub OAuth, proxy HTTP and websockets, report activity.",
    )
    parser.add_argument("--ip", default="127.0.0.1", help="Address to listen on.")
    parser.add_argument("--port", type=int, default=8888, help="Port to listen on.")
    parser.add_argument("--entry", required=True, help="Entry file or folder, relative to --cwd.")
    parser.add_argument(
        "--cwd",
        default=".",
        help="The dashboard's folder (with --git-url: relative to the repository).",
    )
    parser.add_argument(
        "--git-url", default="", help="Fetch the dashboard from this git repository first."
    )
    parser.add_argument("--git-ref", default="main", help="Branch or tag of --git-url.")
    parser.add_argument(
        "--git-schemes", default="https", help="URL schemes allowed for --git-url, comma separated."
    )
    parser.add_argument(
        "--git-max-bytes",
        type=int,
        default=200_000_000,
        help="The most the checkout may take on disk; the fetch stops past it.",
    )
    parser.add_argument(
        "--git-timeout", type=float, default=120, help="Seconds the fetch may take."
    )
    parser.add_argument(
        "--arg", action="append", default=[], dest="args", help="An app argument (repeatable)."
    )
    parser.add_argument(
        "--warm-kernels",
        type=int,
        default=0,
        help="Kernels to keep preheated (frameworks with warm_kernel_flags: Voilà).",
    )
    parser.add_argument(
        "--warm-burst",
        type=int,
        default=0,
        help="Kernels to preheat beyond --warm-kernels while a class arrives (the service's "
        "estimate, set for a start inside a keep-warm window).",
    )
    parser.add_argument(
        "--max-warm-kernels",
        type=int,
        default=100,
        help="The most preheated kernels the pool may grow to with demand (the hub's "
        "max_warm_kernels).",
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=120, help="Seconds to wait for the app."
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="The Python the app and its kernels run with: the dashboard's own environment "
        "(hub_viz.environments), else the launcher's.",
    )
    parser.add_argument(
        "--activity-interval", type=float, default=60, help="Seconds between activity reports."
    )
    parser.add_argument(
        "--access-interval",
        type=float,
        default=60,
        help="Seconds a viewer's access is trusted before it is checked again: with the "
        "service for viewer cookies, with the hub for hub logins (HubOAuth's cache).",
    )
    parser.add_argument(
        "--max-body-size",
        type=int,
        default=64 * 1024 * 1024,
        help="The largest request body (bytes) passed to the app; it is streamed, never held.",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=300,
        help="Seconds a request body may take to arrive before the connection is closed.",
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=300,
        help="Seconds an idle viewer connection (or one sending its headers) is kept open.",
    )
    parser.add_argument(
        "--failure-linger",
        type=float,
        default=30,
        help="Seconds to keep answering after the app failed to start, so the reason "
        "can be read, before exiting.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="Log at debug level, successful requests included (the spawner's debug).",
    )
    workdir.add_arguments(parser)
    return parser.parse_args(argv)


def framework_from_env() -> Framework:
    """The framework record the spawner serialised into ``HUB_VIZ_FRAMEWORK``."""
    raw = os.environ.get("HUB_VIZ_FRAMEWORK")
    if not raw:
        raise SystemExit("hub-viz-launch: HUB_VIZ_FRAMEWORK is not set (the spawner sets it).")
    data = json.loads(raw)
    command = data.pop("command", [])
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    framework = Framework(command=(), **fields)
    return with_command(framework, command) if command else framework


def app_environment(extra: dict[str, str]) -> dict[str, str]:
    """The app's environment: the launcher's, minus every hub credential, plus ``extra``
    (a search path in it, ``*_PATH``, goes before the launcher's own value)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "JPY_", "HUB_VIZ_")) and k != "JUPYTER_TOKEN"
    }
    for key, value in extra.items():
        if (key == "PATH" or key.endswith("_PATH")) and env.get(key) and value:
            value += os.pathsep + env[key]
        env[key] = value
    return env


def launcher_context(options: argparse.Namespace) -> LauncherContext:
    """Everything the handlers share, from the options and what the spawner set in the
    environment: the app's command and process, the viewer checks, the activity reporter."""
    framework = framework_from_env()
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    owner = os.environ.get("JUPYTERHUB_USER", "")
    server_name = os.environ.get("JUPYTERHUB_SERVER_NAME", "")
    server_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    port = AppPort()  # held while the launcher runs
    app_port = port.number
    app_token = secrets.token_urlsafe(24) if framework.needs_app_token else ""
    command = build_command(
        framework,
        entry=options.entry,
        port=app_port,
        prefix=prefix,
        args=options.args,
        app_token=app_token,
        python=options.python,
        warm_kernels=options.warm_kernels,
        max_warm_kernels=options.max_warm_kernels,
        warm_burst=options.warm_burst,
    )
    app = AppProcess(
        command.argv,
        env=app_environment(command.env),
        cwd=options.cwd,
        ready_url=f"http://127.0.0.1:{app_port}{prefix}{command.ready_path}",
        ready_headers={"Authorization": f"token {app_token}"} if app_token else None,
        port=port,
    )
    reporter = ActivityReporter(
        os.environ.get("JUPYTERHUB_ACTIVITY_URL", ""),
        server_token,
        server_name,
        interval=options.activity_interval,
    )
    return LauncherContext(
        app=app,
        app_port=app_port,
        app_token=app_token,
        page_path=command.page_path,
        framework=framework,
        reporter=reporter,
        owner=owner,
        server_token=server_token,
        grants=GrantKeeper.from_env(prefix, owner, server_name),
        open_url=os.environ.get("HUB_VIZ_OPEN_URL", ""),
        frame_ancestors=FrameAncestors.from_env(),
        prefix=prefix,
        mode=kernel_filter.launcher_mode(os.environ),
        author=os.environ.get("HUB_VIZ_AUTHOR", "") or owner,
        hub_login=HubLogin(server_token, prefix, cache_max_age=options.access_interval),
        access=AccessCheck.from_env(server_token, options.access_interval),
        checkout=git_checkout(options),
        max_body_size=options.max_body_size,
    )


def git_checkout(options: argparse.Namespace) -> GitCheckout | None:
    """The git source to fetch before the app starts, if ``--git-url`` names one."""
    if not options.git_url:
        return None
    from .source import GitCheckout

    return GitCheckout(options)


def launcher_application(ctx: LauncherContext) -> LauncherApplication:
    """The launcher's routes under the server's prefix (see the module's docstring)."""
    hub_login = ctx.hub_login
    assert hub_login is not None and ctx.frame_ancestors is not None  # both made just above
    login_route = LazyRoute(lambda: login_handler(hub_login))
    callback_route = LazyRoute(lambda: callback_handler(hub_login))
    esc = ctx.prefix.rstrip("/")
    web_app = LauncherApplication(
        [
            (esc + r"/api", ProbeHandler),
            (esc + r"/oauth_callback", callback_route),
            (esc + r"/_hub_viz/login", login_route),
            (esc + r"/_hub_viz/status", StatusHandler),
            (esc + r"/_hub_viz/enter", EnterHandler),
            (esc + r"(?:/.*)?", AppHandler),
        ],
        own_host=OwnHost.from_env(),
        origin=TrustedOrigin.from_env(),
        hub_viz=ctx,
        cookie_secret=secrets.token_bytes(32),
        template_path=str(TEMPLATES),
        websocket_ping_interval=30,
        xsrf_cookies=False,
        log_function=log_request,
    )
    login_route.bind(web_app)
    callback_route.bind(web_app)
    return web_app


def listen(web_app: LauncherApplication, options: argparse.Namespace) -> HTTPServer:
    """Serve ``web_app`` on the launcher's address, with the connection limits of the options."""
    return web_app.listen(
        options.port,
        options.ip,
        # no xheaders: the application reads the origin itself (forwarded.TrustedOrigin)
        # the launcher's own routes take no body; the app's route streams up to --max-body-size
        max_body_size=OWN_ROUTES_MAX_BODY,
        body_timeout=options.body_timeout,
        idle_connection_timeout=options.idle_timeout,
    )


def stop_requested() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (the hub stopping the server)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    return stopping


async def start_app(
    ctx: LauncherContext, options: argparse.Namespace, stopping: asyncio.Event
) -> bool:
    """Fetch the source, prepare the work folder, start the app and wait until it answers.

    False when it failed, timed out, or a stop came first (the hub giving up on
    the spawn ends the wait at once).
    """
    app = ctx.app
    if await fetch_source(ctx.checkout, app, stopping) and await workdir.use_work_folder(
        options, app
    ):
        await app.start()
    if app.proc is None or app.exited.is_set():
        return False
    waiting = asyncio.ensure_future(app.wait_ready(options.ready_timeout))
    stop_wait = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([waiting, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    if waiting.done():
        return waiting.result()
    waiting.cancel()
    return False


async def serve_until_done(
    ctx: LauncherContext, ready: bool, options: argparse.Namespace, stopping: asyncio.Event
) -> int:
    """Serve until the hub stops the server or the app exits; the exit code.

    An app that failed to start is reported and its reason kept readable for
    ``--failure-linger`` seconds.
    """
    app, name = ctx.app, ctx.framework.display_name
    if not ready and app.state is AppState.STARTING:  # asked to stop before it answered
        log.info("Stopped while the %s app was starting.", name)
        return 0
    if not ready:
        log.error("The %s app failed to start: %s", name, app.message)
        try:
            await asyncio.wait_for(stopping.wait(), options.failure_linger)
        except asyncio.TimeoutError:
            pass
        return 1
    log.info("The %s app is ready after %.2f s", name, app.elapsed)
    waiters = [asyncio.ensure_future(stopping.wait()), asyncio.ensure_future(app.exited.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    if app.exited.is_set() and not stopping.is_set():
        log.error(
            "The %s app exited with code %s; stopping so the hub sees this server stop.",
            name,
            app.returncode,
        )
        return 1
    return 0


async def shut_down(ctx: LauncherContext, options: argparse.Namespace) -> None:
    """Stop the app, send the last activity report, remove the checkout and work folder."""
    await ctx.app.stop()
    await ctx.reporter.flush()
    if ctx.checkout is not None:
        ctx.checkout.remove()
    workdir.clean_up(options)


async def run(options: argparse.Namespace) -> int:
    """The launcher's life: listen at once (the hub's probe), start the app, serve, stop."""
    AsyncHTTPClient.configure(None, max_clients=512)
    use_address_first_resolver()  # no threads for 127.0.0.1 (the app, a local hub)
    ctx = launcher_context(options)
    server = listen(launcher_application(ctx), options)
    log.info(
        "hub-viz-launch %s serving %s (%s) under %s on %s:%s",
        __version__,
        options.entry,
        ctx.framework.display_name,
        ctx.prefix,
        options.ip,
        options.port,
    )
    stopping = stop_requested()
    background = [asyncio.ensure_future(ctx.reporter.run())]
    if ctx.frame_ancestors is not None:
        background.append(asyncio.ensure_future(ctx.frame_ancestors.run()))
    ready = await start_app(ctx, options, stopping)
    exit_code = await serve_until_done(ctx, ready, options, stopping)
    server.stop()
    for task in background:
        task.cancel()
    await shut_down(ctx, options)
    return exit_code


async def fetch_source(
    checkout: GitCheckout | None, app: AppProcess, stopping: asyncio.Event
) -> bool:
    """Fetch the git source, if any; False (the app marked failed) when it cannot start."""
    if checkout is None:
        return True
    log.info("Fetching %s at %s", checkout.source.url, checkout.source.ref)
    try:
        app.cwd = await checkout.fetch(stopping)
    except HubVizError as e:
        log.error("Fetching the git source failed: %s", e.log_message)
        app.fail(e.message)
        return False
    except OSError as e:  # no git where the dashboard runs, no room for the checkout
        log.error("Fetching the git source failed: %s", e)
        app.fail("The dashboard's git source could not be fetched on this server.")
        return False
    return bool(app.cwd)


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log line, without query strings: one-time grants stay out of logs.

    As Jupyter servers do, a successful answer (2xx, 304) is a debug line: a page and
    its scripts would otherwise write a dozen lines per viewer into the hub's log.
    Redirects (a viewer let in, sent to log in) stay at info, refusals are warnings."""
    status = handler.get_status()
    if status < 300 or status == 304:
        if not access_log.isEnabledFor(logging.DEBUG):
            return  # most requests: nothing to redact or format
        log_method = access_log.debug
    elif status < 400:
        log_method = access_log.info
    else:
        log_method = access_log.warning if status < 500 else access_log.error
    request = handler.request
    hub_viz = handler.settings.get("hub_viz")
    rule = hub_viz.framework.session_binding if hub_viz is not None else ()
    log_method(
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        redacted_path(rule, request.path) if rule else request.path,
        request.remote_ip,
        1000.0 * request.request_time(),
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point of ``hub-viz-launch``."""
    handler = logging.StreamHandler()  # tornado's format, without tornado.options
    handler.setFormatter(LogFormatter(color=False))
    logging.getLogger().addHandler(handler)
    options = parse_args(argv)
    logging.getLogger().setLevel(logging.DEBUG if options.debug else logging.INFO)
    try:
        code = ioloop.IOLoop.current().run_sync(lambda: run(options))
    except HubVizError as e:
        log.error("hub-viz-launch: %s", e.log_message)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
