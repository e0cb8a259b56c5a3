"""No code from viewers: which Jupyter routes and kernel messages reach the app.

A dashboard is not a notebook. Voilà runs a Jupyter kernel per viewer and
hands the page a websocket to it, so the same socket that carries widget
updates could carry ``execute_request``; JupyterLab (the ``notebook``
framework) is a full Jupyter server. The launcher therefore decides, per
request, what of a Jupyter server a viewer may reach, from the framework
record's ``jupyter_api`` field, the dashboard's mode (``HUB_VIZ_MODE``) and
whether the viewer owns the server:

``voila`` (Voilà), shared **and** per-viewer, **every** viewer, the owner included
    Only the routes in :data:`VOILA_ROUTES` reach the app: the page, its
    scripts, styles and themes, Voilà's own (image-only) files, the kernel's
    model, the page's shutdown of its own kernel on unload, and the kernel
    websocket. On that websocket only :data:`VIEWER_MSG_TYPES` on the
    ``shell`` channel pass (what ipywidgets needs); every other message
    (``execute_request``, ``inspect_request``, ``complete_request``,
    ``history_request``, ``is_complete_request``, ``shutdown_request``,
    ``interrupt_request``, debug requests, ``input_reply`` on stdin, …) and
    every frame that does not parse is dropped. An author who wants to run
    code uses their own notebook server, not the dashboard.
``jupyterlab`` (the ``notebook`` framework), per-viewer only
    The viewer who owns the server passes unfiltered: it is their own
    notebook. Anyone else (an admin, someone the server was shared with) and
    any instance that is not per-viewer (the spec never allows one) get the
    ``none`` rules below, which leave JupyterLab unable to run anything.
``marimo`` (``marimo run``), every viewer, the owner included
    Only the routes in :data:`MARIMO_ROUTES` reach the app: the page, its
    assets and icons, its health poll, files the notebook itself serves
    (``@file/``, ``public/``), the websocket marimo sends outputs on (it
    reads nothing a viewer sends there but the close), and the three POSTs
    that carry UI element values. Running or editing cells, the scratchpad,
    reading the code, exports, the file explorer, workspace listings,
    packages, the terminal and collaboration sockets are refused here, even
    though ``marimo run`` refuses most of them itself.
``solara`` (Solara), every viewer, the owner included
    Solara runs a virtual kernel per page and hands the page a Jupyter kernel
    websocket: only :data:`SOLARA_ROUTES` pass (its pages, which may be any
    path, its files, the kernel's model, the page's close of its own kernel)
    and on the kernel websocket the same widget messages as for Voilà. Its
    ``resourcez`` server report and debug eviction are refused.
``jupyter-server`` (an operator's framework that runs a Jupyter server for its app)
    The app's own routes pass; the Jupyter server's API (:data:`JUPYTER_SERVER_PATHS`:
    kernels, sessions, contents, terminals, files, …), websockets included,
    is refused, as it is for anyone but the owner of a per-viewer ``jupyterlab``.
``none`` (Dash, Bokeh, Panel, Streamlit, Gradio, Shiny, NiceGUI, custom commands)
    No Jupyter server runs, so there is none to protect: every path the app
    serves passes (a Streamlit page named ``Files``, a Dash ``files/…``
    download route, an ``api/events`` route of the app's own), as it would
    bare. Only paths outside the prefix or with ``.``/``..`` segments are
    refused, for every kind.

Which rules each kind gets is data (:data:`RULES_BY_KIND`), not code.

Refused HTTP requests answer 403; a refused websocket is closed with 1008
(policy violation) before anything connects to the app; a dropped kernel
message is simply not forwarded (the kernel never sees it, nothing is sent
back). Each refusal is logged with the route or ``msg_type`` and the viewer,
never a message's content.

Frames are decoded exactly as jupyter_server decodes them
(``jupyter_server/services/kernels/connection/base.py``): JSON text and the
legacy binary layout without a subprotocol, the offset table of
``v1.kernel.websocket.jupyter.org`` with it (what Voilà 0.5's page
negotiates). Only frames laid out exactly as the protocol writes them are
accepted, so the parts jupyter_server slices out are the parts checked here.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import unquote

from ..frameworks import JUPYTER_API_KINDS, PER_VIEWER, SHARED

log = logging.getLogger("hub_viz.launcher")

# -- kernel messages --------------------------------------------------------------

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
# Websocket subprotocols the filter decodes; the legacy protocol is "no subprotocol".
KERNEL_SUBPROTOCOLS = (V1_PROTOCOL,)

# What a dashboard's widgets send; all on the shell channel.
VIEWER_MSG_TYPES = frozenset(
    {"comm_open", "comm_msg", "comm_close", "comm_info_request", "kernel_info_request"}
)
VIEWER_CHANNELS = frozenset({"shell"})
# Dropped like any type not in VIEWER_MSG_TYPES; listed for the log and the tests.
REFUSED_MSG_TYPES = frozenset(
    {
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "shutdown_request",
        "interrupt_request",
        "debug_request",
        "input_reply",
        "usage_request",
        "create_subshell_request",
        "delete_subshell_request",
        "list_subshell_request",
    }
)


class MalformedFrame(ValueError):
    """A websocket frame that is not a kernel message laid out as the protocol writes it."""


@dataclass(frozen=True)
class KernelMessage:
    """What the filter reads of a viewer's message: where it goes and what it is."""

    channel: str
    msg_type: str


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        # Parsers disagree on which duplicate wins; the kernel may not use ours.
        raise MalformedFrame("duplicate key in the header")
    return dict(pairs)


def _header_from_bytes(raw: bytes) -> dict[str, Any]:
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MalformedFrame(f"header is not JSON: {e.__class__.__name__}") from None
    if not isinstance(header, dict):
        raise MalformedFrame("header is not an object")
    return header


def _msg_type(header: Any) -> str:
    if not isinstance(header, dict):
        raise MalformedFrame("header is not an object")
    msg_type = header.get("msg_type")
    if not isinstance(msg_type, str) or not msg_type:
        raise MalformedFrame("header has no msg_type")
    return msg_type


def parse_v1(frame: str | bytes) -> KernelMessage:
    """A ``v1.kernel.websocket.jupyter.org`` frame.

    Layout: a little-endian uint64 ``n``, then ``n`` uint64 offsets; the
    channel name lies between offsets 0 and 1, then header, parent header,
    metadata, content and any buffers, the last part ending at offset
    ``n - 1`` = the frame's end.
    """
    if not isinstance(frame, bytes):
        raise MalformedFrame("v1 frames are binary")
    if len(frame) < 8:
        raise MalformedFrame("frame shorter than its offset count")
    n = int.from_bytes(frame[:8], "little")
    # channel + header + parent_header + metadata + content: at least 6 offsets.
    if n < 6 or 8 * (n + 1) > len(frame):
        raise MalformedFrame("bad offset count")
    offsets = [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
    if offsets[0] != 8 * (n + 1) or offsets[-1] != len(frame):
        raise MalformedFrame("offsets do not span the frame")
    if any(a > b for a, b in pairwise(offsets)):
        raise MalformedFrame("offsets go backwards")
    try:
        channel = frame[offsets[0] : offsets[1]].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedFrame("channel is not UTF-8") from None
    header = _header_from_bytes(frame[offsets[1] : offsets[2]])
    return KernelMessage(channel, _msg_type(header))


def parse_legacy_binary(frame: bytes) -> KernelMessage:
    """A binary frame without a subprotocol (a JSON message followed by its buffers).

    Layout: big-endian uint32 ``nbufs``, ``nbufs`` uint32 offsets; part 0 is
    the message as JSON, the others its buffers, the last running to the end.
    """
    if len(frame) < 8:
        raise MalformedFrame("frame shorter than its offset table")
    (nbufs,) = struct.unpack("!i", frame[:4])
    if nbufs < 1 or 4 * (nbufs + 1) > len(frame):
        raise MalformedFrame("bad buffer count")
    offsets = list(struct.unpack("!" + "I" * nbufs, frame[4 : 4 * (nbufs + 1)]))
    if offsets[0] != 4 * (nbufs + 1) or offsets[-1] > len(frame):
        raise MalformedFrame("offsets do not span the frame")
    if any(a > b for a, b in pairwise(offsets)):
        raise MalformedFrame("offsets go backwards")
    end = offsets[1] if nbufs > 1 else len(frame)
    try:
        msg = json.loads(frame[offsets[0] : end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise MalformedFrame(f"message is not JSON: {e.__class__.__name__}") from None
    return _legacy_message(msg)


def parse_legacy_json(text: str) -> KernelMessage:
    """A text frame without a subprotocol: the whole message as JSON."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise MalformedFrame(f"message is not JSON: {e.__class__.__name__}") from None
    return _legacy_message(msg)


def _legacy_message(msg: Any) -> KernelMessage:
    if not isinstance(msg, dict):
        raise MalformedFrame("message is not an object")
    # jupyter_server pops "channel" and assumes shell without one; the kernel
    # sees msg["header"] (a top-level "msg_type" is ignored).
    channel = msg.get("channel")
    if channel is None:
        channel = "shell"
    if not isinstance(channel, str):
        raise MalformedFrame("channel is not a string")
    return KernelMessage(channel, _msg_type(msg.get("header")))


def parse_frame(frame: str | bytes, subprotocol: str | None) -> KernelMessage:
    """Decode a viewer's frame as jupyter_server will for this connection's subprotocol."""
    if subprotocol == V1_PROTOCOL:
        return parse_v1(frame)  # a text frame is refused there
    if subprotocol is not None:
        raise MalformedFrame("unknown subprotocol")
    if isinstance(frame, bytes):
        return parse_legacy_binary(frame)
    return parse_legacy_json(frame)


@dataclass(frozen=True)
class Verdict:
    """Whether one frame may reach the kernel, and what to log if not."""

    allowed: bool
    msg_type: str = ""
    channel: str = ""
    reason: str = ""


def check_frame(frame: str | bytes, subprotocol: str | None) -> Verdict:
    """Allow a viewer's frame only if it is a widget message on the shell channel."""
    try:
        msg = parse_frame(frame, subprotocol)
    except MalformedFrame as e:
        return Verdict(False, reason=f"malformed frame ({e})")
    if msg.msg_type not in VIEWER_MSG_TYPES:
        return Verdict(False, msg.msg_type, msg.channel, "not a widget message")
    if msg.channel not in VIEWER_CHANNELS:
        return Verdict(False, msg.msg_type, msg.channel, f"on the {loggable(msg.channel)} channel")
    return Verdict(True, msg.msg_type, msg.channel)


_LOGGABLE = re.compile(r"[^\w.:/%@+~-]")


def loggable(value: str, limit: int = 64) -> str:
    """A viewer-supplied name made safe for one log line (no newlines, bounded)."""
    return _LOGGABLE.sub("?", value[:limit]) or "?"


class KernelChannelFilter:
    """The filter on one viewer's kernel websocket: counts and logs what it drops."""

    LOG_LIMIT = 20  # drops logged one by one per connection; the rest are counted

    def __init__(self, subprotocol: str | None, viewer: str, kernel: str) -> None:
        self.subprotocol = subprotocol
        self.viewer = viewer
        self.kernel = kernel
        self.dropped = 0

    def allows(self, frame: str | bytes) -> bool:
        verdict = check_frame(frame, self.subprotocol)
        if verdict.allowed:
            return True
        self.dropped += 1
        if self.dropped <= self.LOG_LIMIT:
            log.warning(
                "Dropped a %s message from %s to kernel %s: %s",
                loggable(verdict.msg_type) if verdict.msg_type else "(unreadable)",
                self.viewer,
                loggable(self.kernel),
                verdict.reason,
            )
            if self.dropped == self.LOG_LIMIT:
                log.warning(
                    "Further drops on this connection of %s are counted, not logged.", self.viewer
                )
        return False

    def close(self) -> None:
        if self.dropped > self.LOG_LIMIT:
            log.warning(
                "Dropped %d messages in all from %s to kernel %s.",
                self.dropped,
                self.viewer,
                loggable(self.kernel),
            )


# -- routes ---------------------------------------------------------------------------

GET = frozenset({"GET", "HEAD"})
_KERNEL_ID = r"\w+-\w+-\w+-\w+-\w+"  # jupyter_server's kernel id pattern


@dataclass(frozen=True)
class Route:
    """One path (a regex matched against the whole path below the prefix)."""

    pattern: str
    methods: frozenset[str] = GET
    websocket: bool = False
    # Messages on this websocket go through the kernel message filter.
    kernel_channel: bool = False
    why: str = ""

    def matches(self, method: str, rel: str, websocket: bool) -> bool:
        if websocket != self.websocket or (not websocket and method not in self.methods):
            return False
        return re.fullmatch(self.pattern, rel) is not None


# What a Voilà 0.5.13 page fetches (recorded in Chromium; tests/browser/test_render.py
# renders its widgets through these routes, tests/hub/test_kernel_filter.py drives them).
VOILA_ROUTES = (
    Route(r"", why="the dashboard page"),
    Route(
        r"voila/(static|templates|labextensions|api/themes)/.+",
        why="the page's scripts, styles and themes",
    ),
    Route(r"voila/files/.+", why="files the page shows (Voilà allows images only)"),
    Route(r"api/kernels/" + _KERNEL_ID, why="the widget manager reads its kernel's model"),
    Route(
        r"voila/api/shutdown/" + _KERNEL_ID,
        frozenset({"POST"}),
        why="the page shuts its own kernel down when it closes",
    ),
    Route(
        r"api/kernels/" + _KERNEL_ID + r"/channels",
        websocket=True,
        kernel_channel=True,
        why="the kernel websocket, filtered",
    ),
    Route(
        r"voila/execution/" + _KERNEL_ID,
        websocket=True,
        why="progressive rendering (when on): runs the notebook's own cells, once",
    ),
    Route(
        r"voila/query/" + _KERNEL_ID,
        websocket=True,
        why="preheated kernels (when on): the page's request details",
    ),
)

# What a marimo 0.25 app page (`marimo run`) fetches (recorded in Chromium;
# tests/browser/test_more_frameworks.py moves a slider through these routes).
MARIMO_ROUTES = (
    Route(r"", why="the app page"),
    Route(r"assets/.+", why="the page's scripts, styles and fonts"),
    Route(
        r"(favicon\.ico|favicon-\d+x\d+\.png|apple-touch-icon\.png"
        r"|android-chrome-\d+x\d+\.png|logo\.png|manifest\.json|site\.webmanifest)",
        why="icons and the web manifest",
    ),
    Route(r"healthz?", why="the page's health poll"),
    Route(r"@file/.+", why="files the running notebook made (plots, tables, downloads)"),
    Route(r"public/.+", why="the notebook's public/ folder, which its author publishes"),
    Route(
        r"api/kernel/(set_ui_element_value|set_model_value|function_call)",
        frozenset({"POST"}),
        why="UI element values and widget callbacks",
    ),
    Route(r"ws", websocket=True, why="outputs from the viewer's session"),
)

# What a Solara 1.64 page fetches (recorded in Chromium; tests/browser/test_more_frameworks.py
# moves a slider through these routes). Solara serves its pages on any path.
SOLARA_ROUTES = (
    Route(
        r"(?!resourcez(/|$)|jupyter/api/|_solara/api/).*",
        why="the app's pages, its scripts, styles and files",
    ),
    Route(r"jupyter/api/kernels/" + _KERNEL_ID, why="the widget manager reads its kernel's model"),
    Route(
        r"jupyter/api/kernels/" + _KERNEL_ID + r"/channels",
        websocket=True,
        kernel_channel=True,
        why="the kernel websocket, filtered",
    ),
    Route(
        r"_solara/api/close/" + _KERNEL_ID,
        frozenset({"POST"}),
        why="the page closes its own kernel when it unloads",
    ),
)

# The Jupyter server's own routes: refused where a Jupyter server runs that the viewer
# may not use (case-insensitive, whole path below the prefix).
JUPYTER_SERVER_PATHS = re.compile(
    r"(api/(kernels|sessions|contents|terminals|kernelspecs|nbconvert|config|events|shutdown"
    r"|collaboration|yjs)|lab/api|files|nbconvert|terminals)(/.*)?",
    re.IGNORECASE,
)

UNFILTERED = "unfiltered"  # every path the app serves
NO_JUPYTER_API = "no-jupyter-api"  # the app's routes, not its Jupyter server's API
VOILA = "voila"
MARIMO = "marimo"
SOLARA = "solara"
# Rules that are an allowlist of routes, and what a refusal says.
ROUTE_TABLES = {
    VOILA: (VOILA_ROUTES, "not part of a Voilà dashboard"),
    MARIMO: (MARIMO_ROUTES, "not part of a marimo app"),
    SOLARA: (SOLARA_ROUTES, "not part of a Solara app"),
}


@dataclass(frozen=True)
class KindRules:
    """The rules of one ``jupyter_api`` kind: for the owner of their own per-viewer
    server, and for every other viewer (and every viewer of a shared dashboard)."""

    own_server: str
    others: str


# framework ``jupyter_api`` kind -> the rules its viewers get (see the module docstring).
RULES_BY_KIND: dict[str, KindRules] = {
    "none": KindRules(UNFILTERED, UNFILTERED),
    "jupyter-server": KindRules(NO_JUPYTER_API, NO_JUPYTER_API),
    "voila": KindRules(VOILA, VOILA),
    "jupyterlab": KindRules(UNFILTERED, NO_JUPYTER_API),
    "marimo": KindRules(MARIMO, MARIMO),
    "solara": KindRules(SOLARA, SOLARA),
}
# An unknown kind gets the strictest rules there are.
STRICTEST = KindRules(VOILA, VOILA)


def rules_for(jupyter_api: str, mode: str, viewer_is_owner: bool) -> str:
    """Which rules a viewer gets (:data:`RULES_BY_KIND`)."""
    kind = RULES_BY_KIND.get(jupyter_api, STRICTEST)
    return kind.own_server if mode == PER_VIEWER and viewer_is_owner else kind.others


@dataclass(frozen=True)
class Decision:
    """Whether a request may reach the app, and whether its websocket is filtered."""

    allowed: bool
    kernel_channel: bool = False
    reason: str = ""


def relative_path(path: str, prefix: str) -> str | None:
    """``path`` below ``prefix``, %-decoded once, repeated slashes collapsed.

    None when it is not below the prefix or has a ``.`` or ``..`` segment
    (browsers never send those; an app might resolve them past a check).
    """
    if path.startswith(prefix):
        raw = path[len(prefix) :]
    elif path == prefix.rstrip("/"):
        raw = ""
    else:
        return None
    rel = re.sub(r"/+", "/", unquote(raw)).lstrip("/")
    if "\x00" in rel or any(seg in (".", "..") for seg in rel.split("/")):
        return None
    return rel


def decide(rules: str, method: str, path: str, prefix: str, *, websocket: bool = False) -> Decision:
    """May this request reach the app under ``rules``?"""
    rel = relative_path(path, prefix)
    if rel is None:
        return Decision(False, reason="a path outside the dashboard or with '.' or '..' segments")
    if rules == UNFILTERED:
        return Decision(True)
    if rules == NO_JUPYTER_API:
        if JUPYTER_SERVER_PATHS.fullmatch(rel):
            return Decision(False, reason="the Jupyter server API is not part of this dashboard")
        return Decision(True)
    routes, refusal = ROUTE_TABLES.get(rules, ROUTE_TABLES[VOILA])
    for route in routes:
        if route.matches(method, rel, websocket):
            return Decision(True, kernel_channel=route.kernel_channel)
    return Decision(False, reason=refusal)


def kernel_id_from_path(path: str) -> str:
    match = re.search(r"api/kernels/(" + _KERNEL_ID + r")/channels", path)
    return match.group(1) if match else "?"


def viewer_label(user: Mapping[str, Any] | None) -> str:
    """Who a log line is about: a hub user's name, or how a grant viewer came in."""
    if not user:
        return "an unknown viewer"
    name = loggable(str(user.get("name") or ""), 100) if user.get("name") else ""
    kind = user.get("kind", "user")
    if kind == "user":
        return name or "an unnamed user"
    if kind == "grant":
        return f"{name} (open link)" if name else "an anonymous viewer (embed link)"
    return f"{loggable(str(kind))} {name}".strip()


def launcher_mode(environ: Mapping[str, str]) -> str:
    """The dashboard's mode as the spawner set it; anything else counts as shared."""
    mode = environ.get("HUB_VIZ_MODE", SHARED)
    return mode if mode == PER_VIEWER else SHARED


__all__ = [
    "JUPYTER_API_KINDS",
    "JUPYTER_SERVER_PATHS",
    "KERNEL_SUBPROTOCOLS",
    "MARIMO",
    "MARIMO_ROUTES",
    "NO_JUPYTER_API",
    "REFUSED_MSG_TYPES",
    "RULES_BY_KIND",
    "SOLARA",
    "SOLARA_ROUTES",
    "UNFILTERED",
    "V1_PROTOCOL",
    "VIEWER_MSG_TYPES",
    "VOILA",
    "VOILA_ROUTES",
    "Decision",
    "KindRules",
    "KernelChannelFilter",
    "KernelMessage",
    "MalformedFrame",
    "Route",
    "Verdict",
    "check_frame",
    "decide",
    "kernel_id_from_path",
    "launcher_mode",
    "parse_frame",
    "parse_legacy_binary",
    "parse_legacy_json",
    "parse_v1",
    "relative_path",
    "rules_for",
    "viewer_label",
]
