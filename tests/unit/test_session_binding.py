"""SessionBinder: a session id belongs to the viewer who first named it."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import FrameworkError
from hub_viz.frameworks import Framework
from hub_viz.launcher.sessions import (
    ANONYMOUS,
    SessionBinder,
    holds_body,
    issued_ids,
    json_session_ids,
    redacted_path,
    session_ids,
    viewer_key,
)

RULE = ("query:session_id", "header:Marimo-Session-Id")
ALICE = {"kind": "grant", "name": "alice"}
BOB = {"kind": "user", "name": "bob"}


def request(uri: str, **headers: str) -> HTTPServerRequest:
    return HTTPServerRequest(method="GET", uri=uri, headers=HTTPHeaders(headers))


def test_ids_are_read_where_the_rule_says() -> None:
    req = request("/p/ws?session_id=s-1&file=x", **{"Marimo-Session-Id": "s-2", "X-Other": "s-3"})
    assert session_ids(RULE, req) == ["s-1", "s-2"]
    assert session_ids((), req) == []


def test_first_viewer_keeps_the_id_and_others_are_refused() -> None:
    binder = SessionBinder(RULE)
    assert binder.check(request("/ws?session_id=s-1"), ALICE)
    assert binder.check(request("/ws?session_id=s-1"), ALICE)  # a reconnect
    assert not binder.check(request("/ws?session_id=s-1"), BOB)
    assert not binder.check(request("/x", **{"Marimo-Session-Id": "s-1"}), BOB)
    assert binder.check(request("/ws?session_id=s-2"), BOB)  # his own


def test_a_refused_request_binds_none_of_its_ids() -> None:
    binder = SessionBinder(RULE)
    assert binder.check(request("/ws?session_id=s-1"), ALICE)
    assert not binder.check(request("/ws?session_id=s-new", **{"Marimo-Session-Id": "s-1"}), BOB)
    assert binder.check(request("/ws?session_id=s-new"), ALICE)


def test_hub_login_and_open_link_of_one_user_are_one_viewer() -> None:
    assert viewer_key({"kind": "user", "name": "alice"}) == viewer_key(ALICE)
    assert viewer_key({"kind": "grant", "name": None, "anonymous": True}) == ANONYMOUS
    assert viewer_key({"kind": "service", "name": "alice"}) != viewer_key(ALICE)


def test_idle_and_surplus_ids_are_forgotten() -> None:
    binder = SessionBinder(RULE, max_sessions=2, idle_seconds=10)
    assert binder.claim(["a"], "alice", now=0)
    assert not binder.claim(["a"], "bob", now=5)
    assert binder.claim(["a"], "bob", now=20)  # alice's went idle
    binder.claim(["b"], "bob", now=21)
    binder.claim(["c"], "bob", now=22)
    assert len(binder) == 2
    assert binder.claim(["a"], "carol", now=23)  # the least recently used was dropped


def test_marimo_declares_where_its_session_id_is() -> None:
    marimo = BUILTIN_FRAMEWORKS["marimo"]
    assert marimo.session_binding == RULE


def test_a_malformed_binding_is_a_clear_error() -> None:
    for item, why in (
        ("cookie:sid", "its place is unknown"),
        ("subprotocol:0", "a number from 1"),
        ("path:session/[^/]+/", "exactly one group"),
        ("issued:(", "does not compile"),
    ):
        with pytest.raises(FrameworkError, match=why):
            Framework(name="x", display_name="X", command=("x",), session_binding=(item,))


def test_subprotocol_and_path_places() -> None:
    rule = ("subprotocol:3", "path:^session/([^/]+)/")
    ws = request("/p/_stcore/stream", **{"Sec-WebSocket-Protocol": "streamlit, xsrf , sid-1"})
    assert session_ids(rule, ws, "/p/") == ["sid-1"]
    # positions count empty entries, as Streamlit does
    assert session_ids(
        rule, request("/p/x", **{"Sec-WebSocket-Protocol": "streamlit,,sid-2"}), "/p/"
    ) == ["sid-2"]
    assert (
        session_ids(rule, request("/p/x", **{"Sec-WebSocket-Protocol": "streamlit"}), "/p/") == []
    )
    # ... and without them, as the launcher passes the list on: both are checked
    tricky = request("/p/x", **{"Sec-WebSocket-Protocol": "streamlit, , x, sid-3"})
    assert session_ids(rule, tricky, "/p/") == ["x", "sid-3"]
    # the path is read as the app reads it: percent-decoded, below the prefix
    assert session_ids(rule, request("/p/session/%61bc/download/x"), "/p/") == ["abc"]
    assert session_ids(rule, request("/p/other/session/abc/x"), "/p/") == []
    assert redacted_path(rule, "/p/session/abc/download/x") == "/p/session/…/download/x"


def test_json_bodies_name_sessions_at_top_level_keys() -> None:
    rule = ("json:session_hash",)
    assert json_session_ids(rule, b'{"data": [1], "session_hash": "h-1"}') == ["h-1"]
    # a duplicate key is seen too (the app keeps the last one)
    assert json_session_ids(rule, b'{"session_hash": "h-1", "session_hash": "h-2"}') == [
        "h-1",
        "h-2",
    ]
    assert json_session_ids(rule, b'{"data": {"session_hash": "inner"}}') == []
    assert json_session_ids(rule, b"not json") == []
    assert json_session_ids(rule, b"[1, 2]") == []
    post = HTTPServerRequest(
        method="POST", uri="/p/q", headers=HTTPHeaders({"Content-Type": "application/json"})
    )
    untyped = HTTPServerRequest(method="POST", uri="/p/q", headers=HTTPHeaders({}))
    form = HTTPServerRequest(
        method="POST",
        uri="/p/q",
        headers=HTTPHeaders({"Content-Type": "multipart/form-data; boundary=x"}),
    )
    assert holds_body(rule, post) and holds_body(rule, untyped)
    assert not holds_body(rule, form)
    assert not holds_body(("query:session_hash",), post)


def test_issued_ids_are_found_in_text_and_binary_messages() -> None:
    shiny = BUILTIN_FRAMEWORKS["shiny"].session_binding
    assert issued_ids(shiny, '{"config": {"workerId": "", "sessionId": "9f8e", "user": null}}') == [
        "9f8e"
    ]
    streamlit = BUILTIN_FRAMEWORKS["streamlit"].session_binding
    uuid = "0f6c3e0a-1b2c-4d5e-8f90-123456789abc"
    assert issued_ids(streamlit, b"\x12\x24" + uuid.encode() + b"\x1a") == [uuid]
    assert issued_ids(("query:x",), uuid) == []
