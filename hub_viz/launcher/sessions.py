"""Per-tab app sessions bound to the viewer who opened them.

Some frameworks give each browser tab a session named by an id the page
sends with every request (marimo: ``?session_id=`` on its websocket and a
``Marimo-Session-Id`` header on its UI posts). The id is a bearer: whoever
names it reattaches to that session (marimo hands it over and disconnects
the tab that had it) and sets its UI elements. Ids show up in page URLs,
screenshots and logs, so on a shared dashboard one viewer who learns
another's id could watch or drive their session.

A framework record says where its requests name a session
(``Framework.session_binding``). The launcher then remembers which viewer
first named each id and refuses (403, logged without the id) any request
from another viewer that names it. The same viewer may name it again (a
reload resumes it, a second tab has its own id). Ids are kept as digests,
dropped after ``idle_seconds`` without use or when more than
``max_sessions`` are known (least recently used first).

Anonymous viewers (of a public dashboard, or an anonymous embed link) have
no name: each browser gets a signed random id of its own in a cookie
(:data:`BROWSER_COOKIE`, set with the first page it loads), and its sessions
are bound to that id. A request from an anonymous viewer without that cookie
may open new sessions but never name a known one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from tornado import httputil, web

from .kernel_filter import loggable, viewer_label

log = logging.getLogger("hub_viz.launcher")

ANONYMOUS = "anonymous viewer"
BROWSER_COOKIE = "hub-viz-browser"


def viewer_key(viewer: Mapping[str, Any]) -> str:
    """Who a session belongs to: a hub user by name (hub login or open link alike)."""
    kind = viewer.get("kind", "user")
    name = viewer.get("name") or ""
    if kind in ("user", "grant"):
        return f"user:{name}" if name else ANONYMOUS
    return f"{kind}:{name}"


def session_ids(rule: Iterable[str], request: httputil.HTTPServerRequest) -> list[str]:
    """Every session id the request names where ``rule`` says to look."""
    found: list[str] = []
    for where in rule:
        kind, _, name = where.partition(":")
        if kind == "query":
            values = [v.decode("utf-8", "replace") for v in request.query_arguments.get(name, [])]
        elif kind == "header":
            values = request.headers.get_list(name)
        else:
            values = []
        found += [v for v in values if v]
    return found


class SessionBinder:
    """Which viewer each session id belongs to, for one launcher."""

    def __init__(
        self, rule: Iterable[str], *, max_sessions: int = 100_000, idle_seconds: float = 24 * 3600
    ) -> None:
        self.rule = tuple(rule)
        self.max_sessions = max_sessions
        self.idle_seconds = idle_seconds
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def claim(self, session_ids: Iterable[str], viewer: str, now: float | None = None) -> bool:
        """Bind the ids to ``viewer`` unless one is another viewer's (then bind none)."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        keys = [hashlib.sha256(sid.encode()).hexdigest() for sid in session_ids]
        if any((owner := self._owners.get(key)) is not None and owner[0] != viewer for key in keys):
            return False
        for key in keys:
            self._bind(key, viewer, now)
        return True

    def _bind(self, key: str, viewer: str, now: float) -> None:
        self._owners[key] = (viewer, now)
        self._owners.move_to_end(key)
        while len(self._owners) > self.max_sessions:
            self._owners.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._owners:
            key, (_, seen) = next(iter(self._owners.items()))
            if now - seen < self.idle_seconds:
                return
            del self._owners[key]

    def check(self, request: httputil.HTTPServerRequest, viewer: Mapping[str, Any]) -> bool:
        """May this viewer's request name the sessions it names? (Binds new ones.)"""
        return self.claim(session_ids(self.rule, request), viewer_key(viewer))

    def __len__(self) -> int:
        return len(self._owners)


def anonymous_browser(handler: web.RequestHandler) -> str:
    """An anonymous viewer's browser: the id in its signed cookie, set on first use.

    The cookie is host-only and HttpOnly; on HTTPS it is ``__Host-`` and
    ``SameSite=None; Partitioned`` (an anonymous embed is framed by another site),
    on plain HTTP on the server's path and ``SameSite=Lax``.
    """
    https = handler.request.protocol == "https"
    name = ("__Host-" if https else "") + BROWSER_COOKIE
    found = handler.get_signed_cookie(name, max_age_days=1)
    if found:
        return f"browser:{found.decode()}"
    browser = secrets.token_urlsafe(18)
    if https:
        attributes = "Path=/; Secure; HttpOnly; SameSite=None; Partitioned"
    else:
        attributes = f"Path={handler.settings['hub_viz'].prefix}; HttpOnly; SameSite=Lax"
    signed = handler.create_signed_value(name, browser).decode()
    handler.add_header("Set-Cookie", f"{name}={signed}; {attributes}")
    return f"browser:{browser}"


def allow_session(handler: web.RequestHandler, viewer: Mapping[str, Any]) -> bool:
    """The launcher's hook: False (a 403 sent, logged) when the request names another
    viewer's session. The answer is sent here, not raised, so that no log line carries
    the request's query (where the id is)."""
    rule = handler.settings["hub_viz"].framework.session_binding
    if not rule:
        return True
    binder = handler.settings.get("hub_viz_sessions")
    if binder is None:
        binder = handler.settings["hub_viz_sessions"] = SessionBinder(rule)
    who = viewer_key(viewer)
    if who == ANONYMOUS:
        who = anonymous_browser(handler)
    if binder.claim(session_ids(rule, handler.request), who):
        return True
    request = handler.request
    log.warning(
        "Refused %s %s for %s: it names another viewer's session",
        "websocket"
        if request.headers.get("Upgrade", "").lower() == "websocket"
        else request.method,
        loggable(request.path, 200),
        viewer_label(dict(viewer)),
    )
    refusal = web.HTTPError(
        403,
        "This page session belongs to another viewer. "
        "Reload the dashboard to get a session of your own.",
    )
    handler.send_error(403, exc_info=(web.HTTPError, refusal, None))
    return False


__all__ = [
    "ANONYMOUS",
    "BROWSER_COOKIE",
    "SessionBinder",
    "anonymous_browser",
    "allow_session",
    "session_ids",
    "viewer_key",
]
