"""SessionBinder: a session id belongs to the viewer who first named it."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest

from hub_viz.errors import FrameworkError
from hub_viz.frameworks import BUILTIN_FRAMEWORKS, Framework
from hub_viz.launcher.sessions import ANONYMOUS, SessionBinder, session_ids, viewer_key

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
    with pytest.raises(FrameworkError, match="'query:<parameter>' or 'header:<name>'"):
        Framework(name="x", display_name="X", command=("x",), session_binding=("cookie:sid",))
