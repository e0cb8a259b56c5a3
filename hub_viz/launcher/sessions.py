"""Per-tab app sessions bound to the viewer who opened them.

Some frameworks give each browser tab a session named by an id the page
sends with every request (marimo: ``?session_id=`` on its websocket and a
``Marimo-Session-Id`` header on its UI posts). The id is a bearer: whoever
names it reattaches to that session (marimo hands it over and disconnects
the tab that had it) and sets its UI elements. Ids show up in page URLs,
screenshots and logs, so on a shared dashboard one viewer who learns
another's id could watch or drive their session.

A framework record says where its requests name a session
(``Framework.session_binding``: a query parameter, a header, a
``Sec-WebSocket-Protocol`` entry, a piece of the path, a key of a JSON body)
and, for ids the app makes itself (Streamlit, Shiny), where its first
websocket messages hand one out. The launcher binds an issued id to the
viewer of that websocket as it passes, and otherwise remembers which viewer
first named each id; it refuses (403, logged without the id) any request
from another viewer that names it. A framework that names sessions in JSON
bodies has those bodies (JSON or untyped, at most :data:`MAX_HELD_BODY`)
held by the launcher until they are checked. The same viewer may name it again (a
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

import functools
import hashlib
import json
import logging
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

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


# Searched for issued ids: the first messages of each app websocket, each up to this size.
ISSUED_MESSAGES = 8
ISSUED_SCAN_CHARS = 256 * 1024
# A body the launcher holds to read its session ids (larger ones are refused, 413).
MAX_HELD_BODY = 2 * 1024 * 1024


def _places(rule: Iterable[str], kind: str) -> list[str]:
    return [name for k, _, name in (w.partition(":") for w in rule) if k == kind]


def _path_below(prefix: str, path: str) -> str:
    """The request path below the server's prefix, percent-decoded (as the app reads it)."""
    path = unquote(path)
    if prefix and path.startswith(prefix):
        return path[len(prefix) :]
    return path.lstrip("/")


def session_ids(
    rule: Iterable[str], request: httputil.HTTPServerRequest, prefix: str = ""
) -> list[str]:
    """Every session id the request line and headers name where ``rule`` says to look."""
    found: list[str] = []
    for where in rule:
        kind, _, name = where.partition(":")
        values: list[str] = []
        if kind == "query":
            values = [v.decode("utf-8", "replace") for v in request.query_arguments.get(name, [])]
        elif kind == "header":
            values = request.headers.get_list(name)
        elif kind == "subprotocol":
            # The entry at that position counting empty entries (as Streamlit does) and
            # not counting them (as a proxy that drops them passes the list on).
            raw = ",".join(request.headers.get_list("Sec-WebSocket-Protocol"))
            entries = [e.strip() for e in raw.split(",")]
            position = int(name)
            for listed in (entries, [e for e in entries if e]):
                if len(listed) >= position and listed[position - 1] not in values:
                    values.append(listed[position - 1])
        elif kind == "path":
            below = _path_below(prefix, request.path)
            values = [m.group(1) for m in _regex(name).finditer(below)]
        found += [v for v in values if v]
    return found


def holds_body(rule: Iterable[str], request: httputil.HTTPServerRequest) -> bool:
    """Must the launcher hold this request's body to read the session ids in it?

    Bodies that may be JSON (typed JSON, or untyped: ASGI apps parse those as JSON)
    when the rule names JSON keys; forms and files stream as before.
    """
    if not _places(rule, "json"):
        return False
    kind = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


class _Object(dict):
    """A JSON object that keeps its key/value pairs as sent (duplicates included)."""

    pairs: list[tuple[str, Any]]


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    found = _Object(pairs)
    found.pairs = pairs
    return found


def json_session_ids(rule: Iterable[str], body: bytes) -> list[str]:
    """Session ids a JSON body names at a top-level key of ``rule`` (duplicates too)."""
    keys = set(_places(rule, "json"))
    if not keys or not body.strip():
        return []
    try:
        value = json.loads(body, object_pairs_hook=_object)
    except ValueError:
        return []  # not JSON: the app refuses it too
    if not isinstance(value, _Object):
        return []
    return [str(v) for k, v in value.pairs if k in keys and v not in (None, "")]


def redacted_path(rule: Iterable[str], path: str) -> str:
    """``path`` with the ids its ``path`` places name replaced, for logs."""
    for pattern in _places(rule, "path"):
        for match in reversed(list(_regex(pattern.lstrip("^")).finditer(path))):
            path = path[: match.start(1)] + "…" + path[match.end(1) :]
    return path


def issued_ids(rule: Iterable[str], message: str | bytes) -> list[str]:
    """Ids the app hands out in a websocket ``message`` (``issued`` places)."""
    patterns = _places(rule, "issued")
    if not patterns:
        return []
    text = message[:ISSUED_SCAN_CHARS]
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return [m.group(1) for p in patterns for m in _regex(p).finditer(text) if m.group(1)]


@functools.lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


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


def anonymous_browser(handler: web.RequestHandler, embed: bool = False) -> str:
    """An anonymous viewer's browser: the id in its signed cookie, set on first use.

    The cookie is host-only and HttpOnly. On HTTPS it is ``__Host-`` and
    ``SameSite=None; Partitioned`` (an anonymous embed is framed by another site); on
    plain HTTP it is on the server's path, ``SameSite=Lax``, or for an ``embed``
    ``SameSite=None; Secure; Partitioned`` like the embed's viewer cookie (browsers
    keep it only where they treat the host as secure, such as ``*.localhost``).
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
        same_site = "SameSite=None; Secure; Partitioned" if embed else "SameSite=Lax"
        attributes = f"Path={handler.settings['hub_viz'].prefix}; HttpOnly; {same_site}"
    signed = handler.create_signed_value(name, browser).decode()
    handler.add_header("Set-Cookie", f"{name}={signed}; {attributes}")
    return f"browser:{browser}"


def _binder(handler: web.RequestHandler) -> SessionBinder:
    binder = handler.settings.get("hub_viz_sessions")
    if binder is None:
        rule = handler.settings["hub_viz"].framework.session_binding
        binder = handler.settings["hub_viz_sessions"] = SessionBinder(rule)
    return binder


def allow_session(handler: web.RequestHandler, viewer: Mapping[str, Any]) -> bool:
    """The launcher's hook: False (a 403 sent, logged) when the request names another
    viewer's session. The answer is sent here, not raised, so that no log line carries
    the request's query (where the id is).

    The viewer is remembered on the handler for :func:`allow_body` and
    :func:`note_issued`.
    """
    rule = handler.settings["hub_viz"].framework.session_binding
    if not rule:
        return True
    who = viewer_key(viewer)
    if who == ANONYMOUS:
        who = anonymous_browser(handler, bool(viewer.get("embed")))
    handler.hub_viz_session_owner = (who, dict(viewer))  # type: ignore[attr-defined]
    prefix = handler.settings["hub_viz"].prefix
    if _binder(handler).claim(session_ids(rule, handler.request, prefix), who):
        return True
    _refuse(handler, viewer)
    return False


def allow_body(handler: web.RequestHandler, body: bytes) -> bool:
    """Like :func:`allow_session`, for the ids a held JSON body names."""
    rule = handler.settings["hub_viz"].framework.session_binding
    owner = getattr(handler, "hub_viz_session_owner", None)
    if not rule or owner is None:
        return True
    who, viewer = owner
    if _binder(handler).claim(json_session_ids(rule, body), who):
        return True
    _refuse(handler, viewer)
    return False


def note_issued(handler: web.RequestHandler, message: str | bytes) -> None:
    """Bind ids the app hands out on this websocket to its viewer (first messages only)."""
    seen = getattr(handler, "hub_viz_messages_seen", 0)
    if seen >= ISSUED_MESSAGES:
        return
    handler.hub_viz_messages_seen = seen + 1  # type: ignore[attr-defined]
    owner = getattr(handler, "hub_viz_session_owner", None)
    if owner is None:
        return
    rule = handler.settings["hub_viz"].framework.session_binding
    binder = _binder(handler)
    for sid in issued_ids(rule, message):
        # Each on its own: a message may also carry ids every session shares (Streamlit
        # sends its installation's ids beside the session's); those stay with whoever
        # got them first and bind nothing anyone names.
        binder.claim([sid], owner[0])


def _refuse(handler: web.RequestHandler, viewer: Mapping[str, Any]) -> None:
    request = handler.request
    rule = handler.settings["hub_viz"].framework.session_binding
    log.warning(
        "Refused %s %s for %s: it names another viewer's session",
        "websocket"
        if request.headers.get("Upgrade", "").lower() == "websocket"
        else request.method,
        loggable(redacted_path(rule, unquote(request.path)), 200),
        viewer_label(dict(viewer)),
    )
    refusal = web.HTTPError(
        403,
        "This page session belongs to another viewer. "
        "Reload the dashboard to get a session of your own.",
    )
    handler.send_error(403, exc_info=(web.HTTPError, refusal, None))


__all__ = [
    "ANONYMOUS",
    "BROWSER_COOKIE",
    "MAX_HELD_BODY",
    "SessionBinder",
    "allow_body",
    "allow_session",
    "anonymous_browser",
    "holds_body",
    "issued_ids",
    "json_session_ids",
    "note_issued",
    "redacted_path",
    "session_ids",
    "viewer_key",
]
