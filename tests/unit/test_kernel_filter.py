"""No code from viewers: frame decoding, the message verdict, routes and the proxy's filter.

Frames are built with jupyter_server's own serialisers and, for every frame
the filter accepts, read back with jupyter_server's own deserialisers: what
the filter checked is what the kernel would get.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    deserialize_msg_from_ws_v1,
    serialize_binary_message,
    serialize_msg_to_ws_v1,
)
from tornado import web, websocket
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import FrameworkError
from hub_viz.frameworks import PER_VIEWER, SHARED, Framework, merge_frameworks
from hub_viz.launcher import kernel_filter as kf
from hub_viz.launcher.proxy import ProxyMixin

from ..loopback import serve

pytestmark = pytest.mark.unit

KERNEL = "0b3c5e6e-1d1f-4a8e-9a51-3c0a4bbd2a10"
SECRET = "print(open('/etc/passwd').read())  # secret-cell-content"

ALLOWED = sorted(kf.VIEWER_MSG_TYPES)
# Everything the brief names, and a few more that are dropped the same way.
REFUSED = sorted(kf.REFUSED_MSG_TYPES | {"execute_reply", "comm_open_x", "COMM_MSG", "x" * 500})


def message(msg_type: str, content: dict | None = None, channel: str = "shell") -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "v",
            "session": uuid.uuid4().hex,
            "date": "2026-11-22T10:00:00.000Z",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "content": content if content is not None else {"code": SECRET},
        "buffers": [],
        "channel": channel,
    }


def v1(msg: dict, buffers: list[bytes] = ()) -> bytes:
    parts = [
        json.dumps(msg[k]).encode() for k in ("header", "parent_header", "metadata", "content")
    ]
    return serialize_msg_to_ws_v1(parts + list(buffers), msg["channel"])


def legacy_binary(msg: dict, buffers: list[bytes] = (b"\x00\x01buffer",)) -> bytes:
    return serialize_binary_message({**msg, "buffers": list(buffers)})


def legacy_text(msg: dict) -> str:
    return json.dumps(msg)


def upstream_reading(frame: str | bytes, subprotocol: str | None) -> tuple[str, str]:
    """(channel, msg_type) as jupyter_server and then the kernel read the frame."""
    if subprotocol == kf.V1_PROTOCOL:
        channel, parts = deserialize_msg_from_ws_v1(frame)
        return channel, json.loads(parts[0])["msg_type"]
    msg = deserialize_binary_message(frame) if isinstance(frame, bytes) else json.loads(frame)
    return msg.pop("channel", None) or "shell", msg["header"]["msg_type"]


ENCODINGS = {
    "v1": (kf.V1_PROTOCOL, v1),
    "legacy-json": (None, legacy_text),
    "legacy-binary": (None, legacy_binary),
}


# -- the verdict ------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("msg_type", ALLOWED)
def test_widget_messages_pass_on_the_shell_channel(encoding: str, msg_type: str) -> None:
    subprotocol, encode = ENCODINGS[encoding]
    frame = encode(message(msg_type, {"comm_id": "c1", "data": {"method": "update"}}))
    verdict = kf.check_frame(frame, subprotocol)
    assert verdict == kf.Verdict(True, msg_type, "shell")
    assert upstream_reading(frame, subprotocol) == ("shell", msg_type)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("msg_type", REFUSED)
def test_every_other_message_type_is_dropped(encoding: str, msg_type: str) -> None:
    subprotocol, encode = ENCODINGS[encoding]
    for channel in ("shell", "control", "stdin"):
        verdict = kf.check_frame(encode(message(msg_type, channel=channel)), subprotocol)
        assert not verdict.allowed
        assert verdict.msg_type == msg_type and verdict.reason == "not a widget message"


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("channel", ["control", "stdin", "iopub", "hb", "", "Shell", "shell "])
def test_widget_messages_on_another_channel_are_dropped(encoding: str, channel: str) -> None:
    subprotocol, encode = ENCODINGS[encoding]
    verdict = kf.check_frame(encode(message("kernel_info_request", channel=channel)), subprotocol)
    assert not verdict.allowed and verdict.msg_type == "kernel_info_request"


def test_the_brief_names_are_all_refused() -> None:
    named = {
        "execute_request",
        "inspect_request",
        "complete_request",
        "history_request",
        "is_complete_request",
        "shutdown_request",
        "interrupt_request",
        "debug_request",
        "input_reply",
    }
    assert named <= kf.REFUSED_MSG_TYPES
    assert not named & kf.VIEWER_MSG_TYPES
    assert kf.VIEWER_MSG_TYPES == {
        "comm_open",
        "comm_msg",
        "comm_close",
        "comm_info_request",
        "kernel_info_request",
    }


def test_legacy_message_without_channel_goes_to_shell_like_jupyter_server() -> None:
    msg = message("comm_msg")
    del msg["channel"]
    assert kf.check_frame(json.dumps(msg), None).allowed
    msg["channel"] = None
    assert kf.check_frame(json.dumps(msg), None).allowed


def test_legacy_top_level_msg_type_is_not_what_counts() -> None:
    # jupyter_server sends msg["header"] on; a top-level msg_type is ignored by it and by us.
    msg = message("execute_request")
    msg["msg_type"] = "comm_msg"
    assert not kf.check_frame(json.dumps(msg), None).allowed
    msg = message("comm_msg")
    msg["msg_type"] = "execute_request"
    assert kf.check_frame(json.dumps(msg), None).allowed


def test_v1_buffers_are_fine() -> None:
    frame = v1(message("comm_msg"), [b"\x00" * 10, b"abc"])
    assert kf.check_frame(frame, kf.V1_PROTOCOL).allowed


# -- malformed frames: dropped ---------------------------------------------------------


def _v1_with_offsets(offsets: list[int], body: bytes, count: int | None = None) -> bytes:
    count = len(offsets) if count is None else count
    table = count.to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return table + body


def _good_v1() -> bytes:
    return v1(message("comm_msg"))


def _v1_offsets(frame: bytes) -> list[int]:
    n = int.from_bytes(frame[:8], "little")
    return [int.from_bytes(frame[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]


def _v1_body(frame: bytes) -> bytes:
    return frame[_v1_offsets(frame)[0] :]


def _v1_raw(channel: bytes, parts: list[bytes]) -> bytes:
    """A canonical v1 frame from raw bytes (the serialiser only takes a str channel)."""
    offsets = [8 * (len(parts) + 3)]
    for part in [channel, *parts]:
        offsets.append(offsets[-1] + len(part))
    return _v1_with_offsets(offsets, channel + b"".join(parts))


def _v1_header_swap(header: bytes) -> bytes:
    parts = [header, b"{}", b"{}", b"{}"]
    return serialize_msg_to_ws_v1(parts, "shell")


MALFORMED_V1 = {
    "empty": b"",
    "short": b"\x06\x00\x00",
    "text frame": "{}",
    "zero offsets": (0).to_bytes(8, "little"),
    "too few parts": serialize_msg_to_ws_v1([b'{"msg_type": "comm_msg"}', b"{}", b"{}"], "shell"),
    "count beyond the frame": _v1_with_offsets([56, 61], b"shell", count=10**6),
    "huge count": (2**64 - 1).to_bytes(8, "little") + b"\x00" * 64,
    "first offset not after the table": _v1_with_offsets(
        [o + 8 for o in _v1_offsets(_good_v1())], b"\x00" * 8 + _v1_body(_good_v1())
    ),
    "offset past the end": _v1_with_offsets(
        _v1_offsets(_good_v1())[:-1] + [10**6], _v1_body(_good_v1())
    ),
    "trailing bytes": _good_v1() + b"garbage",
    "offsets backwards": _v1_with_offsets(
        [
            o if i != 2 else _v1_offsets(_good_v1())[1] - 1
            for i, o in enumerate(_v1_offsets(_good_v1()))
        ],
        _v1_body(_good_v1()),
    ),
    "header not JSON": _v1_header_swap(b"{msg_type: comm_msg}"),
    "header not an object": _v1_header_swap(b'["comm_msg"]'),
    "header without msg_type": _v1_header_swap(b'{"msg_id": "1"}'),
    "msg_type not a string": _v1_header_swap(b'{"msg_type": ["comm_msg"]}'),
    "msg_type empty": _v1_header_swap(b'{"msg_type": ""}'),
    "header not UTF-8": _v1_header_swap(b'{"msg_type": "comm_msg", "x": "\xff"}'),
    "duplicate msg_type": _v1_header_swap(
        b'{"msg_type": "comm_msg", "msg_type": "execute_request"}'
    ),
    "duplicate msg_type, allowed last": _v1_header_swap(
        b'{"msg_type": "execute_request", "msg_type": "comm_msg"}'
    ),
    "BOM": _v1_header_swap(b'\xef\xbb\xbf{"msg_type": "comm_msg"}'),
    "channel not UTF-8": _v1_raw(b"sh\xffll", [b'{"msg_type": "comm_msg"}', b"{}", b"{}", b"{}"]),
    "deeply nested header": _v1_header_swap(
        b'{"msg_type": "comm_msg", "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    ),
}


@pytest.mark.parametrize("name", MALFORMED_V1)
def test_malformed_v1_frames_are_dropped(name: str) -> None:
    verdict = kf.check_frame(MALFORMED_V1[name], kf.V1_PROTOCOL)
    assert not verdict.allowed
    assert verdict.reason.startswith("malformed frame") or verdict.reason.startswith("on the")


def _legacy_binary_table(nbufs: int, offsets: list[int], body: bytes, signed: bool = True) -> bytes:
    return (
        struct.pack("!i" if signed else "!I", nbufs)
        + struct.pack("!" + "I" * len(offsets), *offsets)
        + body
    )


GOOD_JSON = json.dumps(message("comm_msg")).encode()
MALFORMED_LEGACY = {
    "not JSON": "{'header': {'msg_type': 'comm_msg'}}",
    "JSON array": '[{"header": {"msg_type": "comm_msg"}}]',
    "no header": '{"msg_type": "comm_msg", "channel": "shell"}',
    "header null": '{"header": null, "channel": "shell"}',
    "channel not a string": json.dumps({**message("comm_msg"), "channel": ["shell"]}),
    "empty text": "",
    "binary empty": b"",
    "binary short": b"\x00\x00\x00\x01",
    "binary zero parts": _legacy_binary_table(0, [], GOOD_JSON),
    "binary negative count": _legacy_binary_table(-1, [8], GOOD_JSON),
    "binary count beyond the frame": _legacy_binary_table(10**6, [8], GOOD_JSON),
    "binary first offset wrong": _legacy_binary_table(1, [9], b" " + GOOD_JSON),
    "binary offsets backwards": _legacy_binary_table(2, [12, 11], GOOD_JSON),
    "binary offset past the end": _legacy_binary_table(2, [12, 10**6], GOOD_JSON),
    "binary not UTF-8": _legacy_binary_table(1, [8], GOOD_JSON[:-1] + b"\xff}"),
    "binary JSON cut by a buffer offset": _legacy_binary_table(2, [12, 20], GOOD_JSON),
}


@pytest.mark.parametrize("name", MALFORMED_LEGACY)
def test_malformed_legacy_frames_are_dropped(name: str) -> None:
    verdict = kf.check_frame(MALFORMED_LEGACY[name], None)
    assert not verdict.allowed and verdict.reason.startswith("malformed frame")


def test_unknown_subprotocol_is_dropped() -> None:
    assert not kf.check_frame(v1(message("comm_msg")), "v2.kernel.websocket.jupyter.org").allowed
    assert not kf.check_frame(legacy_text(message("comm_msg")), "").allowed


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_mutated_frames_read_the_same_by_jupyter_server_when_accepted(encoding: str) -> None:
    """Fuzz: random byte edits of real frames. Whatever the filter lets through,
    jupyter_server (and so the kernel) reads as the same channel and msg_type."""
    subprotocol, encode = ENCODINGS[encoding]
    rng = random.Random(7)
    accepted = refused = 0
    text = subprotocol is None and encoding == "legacy-json"
    seeds = [
        encode(message("comm_msg", {"comm_id": "c", "data": {}})),
        encode(message("execute_request")),
        encode(message("kernel_info_request", channel="control")),
    ]
    seeds = [seed.encode() if text else seed for seed in seeds]
    for _ in range(3000):
        frame = bytearray(rng.choice(seeds))
        if text:
            body = 0
        elif subprotocol == kf.V1_PROTOCOL:
            body = _v1_offsets(bytes(frame))[0]
        else:
            body = 4 * (struct.unpack("!i", frame[:4])[0] + 1)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(frame))
            action = rng.random()
            if action < 0.6:  # same length after the offset table: the layout still holds
                frame[rng.randrange(body, len(frame))] = rng.choice(b'{}[]",:\\ a_\x00\xff')
            elif action < 0.7:
                frame[pos] = rng.randrange(256)
            elif action < 0.75:
                frame[pos:pos] = bytes([rng.randrange(256)])
            else:
                del frame[pos]
        data: str | bytes = bytes(frame)
        if text:
            try:
                data = bytes(frame).decode("utf-8")
            except UnicodeDecodeError:
                continue
        verdict = kf.check_frame(data, subprotocol)
        if not verdict.allowed:
            refused += 1
            continue
        accepted += 1
        try:
            channel, msg_type = upstream_reading(data, subprotocol)
        except (KeyError, TypeError, ValueError):
            continue  # jupyter_server fails on it too: nothing reaches the kernel
        assert (channel, msg_type) == (verdict.channel, verdict.msg_type)
        assert msg_type in kf.VIEWER_MSG_TYPES and channel == "shell"
    assert refused > 100 and accepted > 50, (accepted, refused)


# -- routes -----------------------------------------------------------------------------

P = "/user/alice/sales/"


@pytest.mark.parametrize(
    ("method", "path", "websocket", "kernel_channel"),
    [
        ("GET", P, False, False),
        ("GET", P.rstrip("/"), False, False),
        ("HEAD", P, False, False),
        ("GET", P + "voila/static/voila.js", False, False),
        ("GET", P + "voila/static/5764.voila.js", False, False),
        ("GET", P + "voila/templates/lab/static/index.css", False, False),
        (
            "GET",
            P + "voila/labextensions/@jupyter-widgets/jupyterlab-manager/static/7.js",
            False,
            False,
        ),
        ("GET", P + "voila/api/themes/@jupyterlab/theme-dark-extension/index.css", False, False),
        ("GET", P + "voila/files/chart.png", False, False),
        ("GET", P + f"api/kernels/{KERNEL}", False, False),
        ("POST", P + f"voila/api/shutdown/{KERNEL}", False, False),
        ("GET", P + f"api/kernels/{KERNEL}/channels", True, True),
        ("GET", P + f"voila/execution/{KERNEL}", True, False),
        ("GET", P + f"voila/query/{KERNEL}", True, False),
    ],
)
def test_voila_allowlist(method: str, path: str, websocket: bool, kernel_channel: bool) -> None:
    decision = kf.decide(kf.VOILA, method, path, P, websocket=websocket)
    assert decision == kf.Decision(True, kernel_channel=kernel_channel)


VOILA_REFUSED = [
    ("POST", "api/kernels", False),
    ("GET", "api/kernels", False),
    ("DELETE", f"api/kernels/{KERNEL}", False),
    ("POST", f"api/kernels/{KERNEL}/interrupt", False),
    ("POST", f"api/kernels/{KERNEL}/restart", False),
    ("GET", f"api/kernels/{KERNEL}/channels", False),  # only as a websocket
    ("GET", "api/sessions", False),
    ("POST", "api/sessions", False),
    ("GET", "api/contents", False),
    ("GET", "api/contents/voila/dashboard.ipynb", False),
    ("PUT", "api/contents/x.py", False),
    ("GET", "api/terminals", False),
    ("POST", "api/terminals", False),
    ("GET", "api/kernelspecs", False),
    ("GET", "files/voila/dashboard.ipynb", False),
    ("GET", "dashboard.ipynb", False),  # Voilà would render any path: only the page's own
    ("GET", "voila/render/x.ipynb", False),
    ("GET", "voila/tree", False),
    ("POST", "voila/static/voila.js", False),
    ("GET", "voila/api/shutdown/" + KERNEL, False),
    ("POST", "voila/api/shutdown/all", False),
    ("GET", "login", False),
    ("GET", "voila/static/../../api/contents", False),
    ("GET", "voila/static/%2e%2e/%2e%2e/api/contents", False),
    ("GET", "voila/static/./voila.js", False),
    ("GET", "API/CONTENTS", False),
    ("GET", "terminals/websocket/1", True),
    ("GET", "api/events/subscribe", True),
    ("GET", "api/kernels/not-a-kernel/channels", True),
    ("GET", f"api/kernels/{KERNEL}/iopub", True),
    ("GET", "", True),
]


@pytest.mark.parametrize(("method", "rel", "websocket"), VOILA_REFUSED)
def test_voila_refuses_everything_else(method: str, rel: str, websocket: bool) -> None:
    assert not kf.decide(kf.VOILA, method, P + rel, P, websocket=websocket).allowed


JUPYTER_API_PATHS = (
    "api/contents",
    "api/kernels",
    f"api/kernels/{KERNEL}/channels",
    "api/sessions",
    "api/terminals/1",
    "files/app.py",
    "Files/app.py",
    "//api//contents",
    "api/%63ontents",
    "terminals/websocket/1",
    "lab/api/settings",
    "nbconvert/html/x",
    "Terminals",
    "api/events",
)


def test_jupyter_server_api_is_refused_where_a_jupyter_server_runs() -> None:
    for rel in JUPYTER_API_PATHS:
        assert not kf.decide(kf.NO_JUPYTER_API, "GET", P + rel, P).allowed, rel
        assert not kf.decide(kf.NO_JUPYTER_API, "GET", P + rel, P, websocket=True).allowed, rel
    # the app's own routes pass
    for rel in (
        "",
        "app",
        "lab",
        "static/js/main.js",
        "api",
        "api/data",
        "apidocs",
        "filesystem",
        "contents",
    ):
        assert kf.decide(kf.NO_JUPYTER_API, "GET", P + rel, P).allowed, rel
    assert not kf.decide(kf.NO_JUPYTER_API, "GET", P + "static/../api/contents", P).allowed


def test_apps_without_a_jupyter_server_get_every_path_they_serve() -> None:
    """A Streamlit page named Files, a Dash files/ route, an app's api/events: as bare."""
    for rel in (*JUPYTER_API_PATHS, "", "app", "_dash-layout", "_stcore/stream", "ws"):
        assert kf.decide(kf.UNFILTERED, "GET", P + rel, P).allowed, rel
        assert kf.decide(kf.UNFILTERED, "POST", P + rel, P).allowed, rel
        assert kf.decide(kf.UNFILTERED, "GET", P + rel, P, websocket=True).allowed, rel
    # but never a path outside the prefix or one with dot segments
    for path in ("/user/other/x/files/a", P + "static/../files/a", P + "a/%2e%2e/b"):
        assert not kf.decide(kf.UNFILTERED, "GET", path, P).allowed, path


def test_every_framework_kind_has_rules() -> None:
    assert set(kf.RULES_BY_KIND) == set(kf.JUPYTER_API_KINDS)
    for kind in kf.RULES_BY_KIND.values():
        assert {kind.own_server, kind.others} <= {
            kf.UNFILTERED,
            kf.NO_JUPYTER_API,
            *kf.ROUTE_TABLES,
        }


@pytest.mark.parametrize("mode", [SHARED, PER_VIEWER])
@pytest.mark.parametrize("owner", [True, False])
def test_an_operator_framework_with_a_jupyter_server_keeps_its_api_refused(
    mode: str, owner: bool
) -> None:
    assert kf.rules_for("jupyter-server", mode, owner) == kf.NO_JUPYTER_API


def test_the_owner_of_a_per_viewer_notebook_passes_unfiltered() -> None:
    lab = BUILTIN_FRAMEWORKS["notebook"].jupyter_api
    assert kf.rules_for(lab, PER_VIEWER, True) == kf.UNFILTERED
    assert kf.rules_for(lab, PER_VIEWER, False) == kf.NO_JUPYTER_API  # an admin, a share
    assert kf.rules_for(lab, SHARED, True) == kf.NO_JUPYTER_API  # never allowed; fails closed
    rel = f"api/kernels/{KERNEL}/channels"
    assert kf.decide(kf.UNFILTERED, "POST", P + "api/kernels", P).allowed
    assert kf.decide(kf.UNFILTERED, "GET", P + rel, P, websocket=True) == kf.Decision(True)


@pytest.mark.parametrize("mode", [SHARED, PER_VIEWER])
@pytest.mark.parametrize("owner", [True, False])
def test_voila_is_filtered_for_everyone_in_every_mode(mode: str, owner: bool) -> None:
    assert kf.rules_for(BUILTIN_FRAMEWORKS["voila"].jupyter_api, mode, owner) == kf.VOILA


@pytest.mark.parametrize(
    "name", ["dash", "bokeh", "panel", "streamlit", "gradio", "shiny", "nicegui", "custom"]
)
@pytest.mark.parametrize("mode", [SHARED, PER_VIEWER])
@pytest.mark.parametrize("owner", [True, False])
def test_frameworks_without_a_jupyter_server_pass_every_path(
    name: str, mode: str, owner: bool
) -> None:
    fw = BUILTIN_FRAMEWORKS[name]
    assert kf.rules_for(fw.jupyter_api, mode, owner) == kf.UNFILTERED


def test_unknown_rules_or_mode_fail_closed() -> None:
    assert kf.rules_for("something-new", PER_VIEWER, True) == kf.VOILA
    assert kf.launcher_mode({}) == SHARED
    assert kf.launcher_mode({"HUB_VIZ_MODE": "per-viewer"}) == PER_VIEWER
    assert kf.launcher_mode({"HUB_VIZ_MODE": "Per-Viewer"}) == SHARED


def test_a_framework_that_runs_viewer_code_is_never_shared() -> None:
    with pytest.raises(FrameworkError, match="shared dashboard never runs it"):
        merge_frameworks(BUILTIN_FRAMEWORKS, {"notebook": {"modes": [SHARED, PER_VIEWER]}})
    with pytest.raises(FrameworkError, match="shared dashboard never runs it"):
        Framework(
            name="lab2", display_name="Lab", command=("x", "{port}"), jupyter_api="jupyterlab"
        )
    with pytest.raises(FrameworkError, match="jupyter_api must be one of"):
        merge_frameworks(BUILTIN_FRAMEWORKS, {"voila": {"jupyter_api": "all"}})
    added = merge_frameworks(BUILTIN_FRAMEWORKS, {"voila-pool": {"command": ["v", "{port}"]}})
    assert added["voila-pool"].jupyter_api == "none"  # additions get no Jupyter API


def test_relative_path() -> None:
    assert kf.relative_path(P + "a//b/", P) == "a/b/"
    assert kf.relative_path(P + "a%2Fb", P) == "a/b"
    assert kf.relative_path(P + "a/%2e%2e/b", P) is None
    assert kf.relative_path(P + "a/%00", P) is None
    assert kf.relative_path("/user/bob/other/", P) is None


def test_log_names_are_bounded_and_single_line() -> None:
    assert kf.loggable("execute_request") == "execute_request"
    assert kf.loggable("a\nb c" + "x" * 100) == "a?b?c" + "x" * 59
    assert kf.loggable("/user/a/b/api/kernels") == "/user/a/b/api/kernels"
    assert kf.viewer_label({"kind": "user", "name": "bob"}) == "bob"
    assert kf.viewer_label({"kind": "grant", "name": "bob"}) == "bob (open link)"
    assert kf.viewer_label({"kind": "grant", "name": None}) == "an anonymous viewer (embed link)"
    assert kf.viewer_label(None) == "an unknown viewer"


# -- the proxy ------------------------------------------------------------------------


@dataclass
class Seen:
    frames: list[str | bytes] = field(default_factory=list)
    protocols: list[list[str]] = field(default_factory=list)


class KernelSocket(websocket.WebSocketHandler):
    """Stands in for jupyter_server's kernel websocket: records and answers."""

    def initialize(self, seen: Seen) -> None:
        self.seen = seen

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        self.seen.protocols.append(list(subprotocols))
        return kf.V1_PROTOCOL if kf.V1_PROTOCOL in subprotocols else None

    def on_message(self, message: str | bytes) -> None:
        self.seen.frames.append(message)
        self.write_message(
            b"reply" if isinstance(message, bytes) else "reply", binary=isinstance(message, bytes)
        )


class AppPage(web.RequestHandler):
    def get(self, *args: str) -> None:
        self.finish("page")

    post = get


class Proxy(ProxyMixin, websocket.WebSocketHandler):
    """The launcher's proxying under Voilà's rules, for a viewer named bob."""

    def initialize(self, port: int, rules: str) -> None:
        self._port, self._rules = port, rules

    @property
    def app_port(self) -> int:  # type: ignore[override]
        return self._port

    app_token = ""

    def note_activity(self) -> None:
        pass

    def viewer(self) -> dict:
        return {"kind": "user", "name": "bob"}

    def jupyter_rules(self) -> str:
        return self._rules

    def check_xsrf_cookie(self) -> None:
        pass

    async def get(self, *args: str) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            await self.open_upstream_websocket()
            await websocket.WebSocketHandler.get(self)
            return
        await self.proxy_http()

    post = delete = get


@dataclass
class Setup:
    url: str
    seen: Seen


@pytest.fixture(params=[kf.VOILA])
async def setup(request: pytest.FixtureRequest) -> AsyncIterator[Setup]:
    seen = Seen()
    upstream, app_port = serve(
        web.Application(
            [
                (r"/api/kernels/[^/]+/channels", KernelSocket, {"seen": seen}),
                (r"/.*", AppPage),
            ]
        )
    )
    front, port = serve(
        web.Application([(r"/.*", Proxy, {"port": app_port, "rules": request.param})])
    )
    yield Setup(f"127.0.0.1:{port}", seen)
    front.stop()
    upstream.stop()


async def _connect(
    setup: Setup, protocols: list[str] | None
) -> websocket.WebSocketClientConnection:
    return await websocket.websocket_connect(
        HTTPRequest(f"ws://{setup.url}/api/kernels/{KERNEL}/channels?session_id=s"),
        subprotocols=protocols,
    )


async def _no_reply(conn: websocket.WebSocketClientConnection, seconds: float = 0.3) -> bool:
    try:
        await asyncio.wait_for(conn.read_message(), seconds)
    except asyncio.TimeoutError:
        return True
    return False


async def test_proxy_forwards_widget_messages_only_v1(setup: Setup, caplog) -> None:
    caplog.set_level(logging.WARNING, "hub_viz.launcher")
    conn = await _connect(setup, [kf.V1_PROTOCOL, "v2.something.new"])
    try:
        assert conn.selected_subprotocol == kf.V1_PROTOCOL
        assert setup.seen.protocols == [[kf.V1_PROTOCOL]]  # only what the filter decodes
        for msg_type in sorted(kf.REFUSED_MSG_TYPES):
            await conn.write_message(v1(message(msg_type)), binary=True)
        await conn.write_message(b"\x00garbage", binary=True)
        await conn.write_message(legacy_text(message("comm_msg")))  # text in v1: dropped
        assert await _no_reply(conn)
        ok = v1(message("comm_msg", {"comm_id": "c", "data": {}}))
        await conn.write_message(ok, binary=True)
        assert await asyncio.wait_for(conn.read_message(), 5) == b"reply"
        assert setup.seen.frames == [ok]  # the app saw the widget message and nothing else
    finally:
        conn.close()
    text = caplog.text
    assert "Dropped a execute_request message from bob to kernel " + KERNEL in text
    assert "Dropped a input_reply message from bob" in text
    assert "Dropped a (unreadable) message from bob" in text
    assert SECRET not in text and "secret-cell-content" not in text


async def test_proxy_filters_the_legacy_protocol(setup: Setup) -> None:
    conn = await _connect(setup, None)
    try:
        assert conn.selected_subprotocol is None
        await conn.write_message(legacy_text(message("execute_request")))
        await conn.write_message(legacy_binary(message("execute_request")), binary=True)
        await conn.write_message(v1(message("comm_msg")), binary=True)  # v1 framing, not negotiated
        assert await _no_reply(conn)
        ok_text = legacy_text(message("kernel_info_request"))
        ok_binary = legacy_binary(message("comm_msg"))
        await conn.write_message(ok_text)
        assert await asyncio.wait_for(conn.read_message(), 5) == "reply"
        await conn.write_message(ok_binary, binary=True)
        assert await asyncio.wait_for(conn.read_message(), 5) == b"reply"
        assert setup.seen.frames == [ok_text, ok_binary]
    finally:
        conn.close()


async def test_proxy_refuses_other_routes(setup: Setup, caplog) -> None:
    caplog.set_level(logging.WARNING, "hub_viz.launcher")
    client = AsyncHTTPClient()
    page = await client.fetch(f"http://{setup.url}/")
    assert page.body == b"page"
    for method, rel in [
        ("GET", "api/contents"),
        ("POST", "api/kernels"),
        ("GET", "api/sessions"),
        ("POST", "api/terminals"),
        ("DELETE", f"api/kernels/{KERNEL}"),
        ("GET", "files/voila/dashboard.ipynb?token=abc"),
    ]:
        with pytest.raises(HTTPClientError) as e:
            await client.fetch(
                f"http://{setup.url}/{rel}",
                method=method,
                body=b"{}" if method == "POST" else None,
                allow_nonstandard_methods=True,
            )
        assert e.value.code == 403, rel
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "hub_viz.launcher")
    assert "Refused POST /api/kernels for bob: not part of a Voilà dashboard" in ours
    assert "Refused GET /files/voila/dashboard.ipynb for bob" in ours
    assert "token=abc" not in ours  # the path, never the query
    # a websocket to a refused route: closed with 1008, nothing reaches the app
    conn = await websocket.websocket_connect(f"ws://{setup.url}/terminals/websocket/1")
    assert await asyncio.wait_for(conn.read_message(), 5) is None
    assert conn.close_code == 1008
    assert "Refused websocket /terminals/websocket/1 for bob" in caplog.text
    assert setup.seen.frames == [] and setup.seen.protocols == []


async def test_drops_beyond_the_log_limit_are_counted(caplog) -> None:
    caplog.set_level(logging.WARNING, "hub_viz.launcher")
    f = kf.KernelChannelFilter(kf.V1_PROTOCOL, "bob", KERNEL)
    for _ in range(kf.KernelChannelFilter.LOG_LIMIT + 30):
        assert not f.allows(v1(message("execute_request")))
    f.close()
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("Dropped a execute_request") for line in lines) == f.LOG_LIMIT
    assert lines[-1] == f"Dropped {f.LOG_LIMIT + 30} messages in all from bob to kernel {KERNEL}."


# -- marimo ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [SHARED, PER_VIEWER])
@pytest.mark.parametrize("owner", [True, False])
def test_marimo_gets_its_own_rules_for_everyone(mode: str, owner: bool) -> None:
    assert kf.rules_for(BUILTIN_FRAMEWORKS["marimo"].jupyter_api, mode, owner) == kf.MARIMO


@pytest.mark.parametrize(
    ("method", "rel", "websocket"),
    [
        ("GET", "", False),
        ("GET", "assets/index-abc123.js", False),
        ("GET", "favicon.ico", False),
        ("GET", "favicon-32x32.png", False),
        ("GET", "manifest.json", False),
        ("GET", "health", False),
        ("GET", "@file/1234-plot.png", False),
        ("GET", "public/logo.png", False),
        ("POST", "api/kernel/set_ui_element_value", False),
        ("POST", "api/kernel/set_model_value", False),
        ("POST", "api/kernel/function_call", False),
        ("GET", "ws", True),
    ],
)
def test_marimo_page_routes_pass(method: str, rel: str, websocket: bool) -> None:
    assert kf.decide(kf.MARIMO, method, P + rel, P, websocket=websocket).allowed


@pytest.mark.parametrize(
    ("method", "rel", "websocket"),
    [
        # running and editing code
        ("POST", "api/kernel/run", False),
        ("POST", "api/kernel/execute", False),
        ("POST", "api/kernel/scratchpad/run", False),
        ("POST", "api/kernel/instantiate", False),
        ("POST", "api/kernel/restart_session", False),
        ("POST", "api/document/transaction", False),
        ("POST", "api/kernel/save", False),
        ("POST", "api/kernel/format", False),
        ("POST", "api/kernel/install_missing_packages", False),
        ("POST", "api/packages/add", False),
        # reading the code or the files
        ("POST", "api/kernel/read_code", False),
        ("POST", "api/export/html", False),
        ("POST", "api/export/script", False),
        ("POST", "api/home/workspace_files", False),
        ("POST", "api/files/list_files", False),
        ("GET", "api/files/download", False),
        ("GET", "app.py", False),
        ("GET", "api/status", False),
        # sockets other than the viewer's outputs
        ("GET", "terminal/ws", True),
        ("GET", "ws_sync", True),
        ("GET", "lsp/pylsp", True),
        # the allowed POSTs, as GET, and the page as POST
        ("GET", "api/kernel/set_ui_element_value", False),
        ("POST", "", False),
        # tricks on the allowed ones
        ("POST", "api/kernel/set_ui_element_value/../run", False),
        ("POST", "api/kernel/%2E%2E/kernel/run", False),
        ("GET", "assets/../app.py", False),
    ],
)
def test_marimo_refuses_code_files_and_editing(method: str, rel: str, websocket: bool) -> None:
    decision = kf.decide(kf.MARIMO, method, P + rel, P, websocket=websocket)
    assert not decision.allowed, rel
    assert decision.reason in (
        "not part of a marimo app",
        "a path outside the dashboard or with '.' or '..' segments",
    )


# -- solara ---------------------------------------------------------------------------

SOLARA_KERNEL = "5f93e111-0428-4032-b0bf-eb1f304c24a6"


@pytest.mark.parametrize("mode", [SHARED, PER_VIEWER])
@pytest.mark.parametrize("owner", [True, False])
def test_solara_gets_its_own_rules_for_everyone(mode: str, owner: bool) -> None:
    assert kf.rules_for(BUILTIN_FRAMEWORKS["solara"].jupyter_api, mode, owner) == kf.SOLARA


@pytest.mark.parametrize(
    ("method", "rel", "websocket", "filtered"),
    [
        ("GET", "", False, False),
        ("GET", "some/page/of/the/app", False, False),  # Solara routes pages on any path
        # it runs no Jupyter server: pages named like its routes are the app's
        ("GET", "files", False, False),
        ("GET", "Terminals", False, False),
        ("GET", "api/contents", False, False),
        ("GET", "_solara/cdn/requirejs@2.3.6/require.js", False, False),
        ("GET", "static/assets/theme.js", False, False),
        ("GET", "static/public/logo.png", False, False),
        ("GET", "jupyter/nbextensions/jupyter-vue/nodeps.js", False, False),
        ("GET", f"jupyter/api/kernels/{SOLARA_KERNEL}", False, False),
        ("POST", f"_solara/api/close/{SOLARA_KERNEL}", False, False),
        ("GET", f"jupyter/api/kernels/{SOLARA_KERNEL}/channels", True, True),
    ],
)
def test_solara_page_routes_pass(method: str, rel: str, websocket: bool, filtered: bool) -> None:
    decision = kf.decide(kf.SOLARA, method, P + rel, P, websocket=websocket)
    assert decision.allowed, rel
    assert decision.kernel_channel is filtered  # its kernel socket gets the widget filter


@pytest.mark.parametrize(
    ("method", "rel", "websocket"),
    [
        ("GET", "resourcez", False),
        ("GET", "resourcez/", False),
        ("POST", f"_solara/api/evict/{SOLARA_KERNEL}", False),
        ("GET", "jupyter/api/kernels", False),
        ("POST", f"jupyter/api/kernels/{SOLARA_KERNEL}", False),
        ("GET", f"jupyter/api/kernels/{SOLARA_KERNEL}/iopub", True),
        ("GET", "ws", True),
        ("POST", "", False),
        ("GET", "static/../app.py", False),
    ],
)
def test_solara_refuses_its_server_routes(method: str, rel: str, websocket: bool) -> None:
    assert not kf.decide(kf.SOLARA, method, P + rel, P, websocket=websocket).allowed, rel
