"""The WSGI loader for Dash apps: finding the WSGI app of an entry file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

dash = pytest.importorskip("dash")

from hub_viz.runners.dash import create_app, find_wsgi_app  # noqa: E402

pytestmark = pytest.mark.unit


def wsgi(environ, start_response):  # a plain WSGI callable
    start_response("200 OK", [])
    return [b""]


@pytest.fixture
def app() -> dash.Dash:
    return dash.Dash(__name__)


@pytest.fixture
def other() -> dash.Dash:
    return dash.Dash(__name__)


def test_server_name_wins(app: dash.Dash) -> None:
    assert find_wsgi_app({"server": wsgi, "app": app}) is wsgi


def test_app_server(app: dash.Dash) -> None:
    assert find_wsgi_app({"app": app, "__name__": "m"}) is app.server


def test_any_dash_instance(app: dash.Dash) -> None:
    assert find_wsgi_app({"dashboard": app, "x": 1}) is app.server


def test_app_name_preferred_over_other_dash_instances(app: dash.Dash, other: dash.Dash) -> None:
    assert find_wsgi_app({"first": other, "app": app}) is app.server


def test_non_callable_server_is_skipped(app: dash.Dash) -> None:
    assert find_wsgi_app({"server": "not a server", "app": app}) is app.server


@pytest.mark.parametrize(
    "namespace",
    [
        {},
        {"__name__": "m", "x": 1},
        {"app": "not a dash app"},
        {"server": None, "app": object()},
        {"Dash": dash.Dash},  # the class, not an instance
    ],
)
def test_no_dash_app_raises(namespace: dict) -> None:
    with pytest.raises(RuntimeError) as e:
        find_wsgi_app(namespace)
    assert "dash.Dash" in str(e.value)
    assert "app = dash.Dash(__name__)" in str(e.value)


def test_create_app_serves_under_the_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "hub_viz_unit_dash_entry"
    (tmp_path / f"{name}.py").write_text(
        "import dash\nfrom dash import html\n"
        "app = dash.Dash(__name__)\napp.layout = html.Div('hello')\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HUB_VIZ_DASH_ENTRY", f"{name}.py")
    monkeypatch.setenv("DASH_URL_BASE_PATHNAME", "/user/alice/sales/")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        server = create_app()
        module = sys.modules[name]
    finally:
        sys.modules.pop(name, None)
    assert server is module.app.server
    assert module.app.config.url_base_pathname == "/user/alice/sales/"
    client = server.test_client()
    assert client.get("/user/alice/sales/").status_code == 200
    assert client.get("/user/alice/sales/_dash-layout").status_code == 200
    assert client.get("/_dash-layout").status_code == 404
