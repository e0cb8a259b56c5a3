"""The WSGI loader for Dash apps: finding the WSGI app of an entry file."""

from __future__ import annotations

import json
import os
import subprocess
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


LOAD = """
import json, sys
from hub_viz.runners.dash import create_app
server = create_app()
import dash._jupyter
client = server.test_client()
print(json.dumps({
    "ipython_loaded": "IPython" in sys.modules,
    "notebook_integration": dash._jupyter._dep_installed,
    "layout": client.get("/p/_dash-layout").status_code,
    "app_saw": getattr(sys.modules["entry"], "SEEN", None),
}))
"""


@pytest.mark.parametrize(
    "source, ipython_loaded, app_saw",
    [
        ("", False, None),  # a plain app: IPython never loaded
        # an app that uses IPython itself still can, after Dash was imported without it
        ("import IPython\nSEEN = IPython.get_ipython.__name__\n", True, "get_ipython"),
    ],
    ids=["plain", "app-imports-ipython"],
)
def test_dash_is_loaded_without_its_notebook_integration(
    tmp_path: Path, source: str, ipython_loaded: bool, app_saw: str | None
) -> None:
    pytest.importorskip("IPython")  # what is left out is only there with IPython
    (tmp_path / "entry.py").write_text(
        "import dash\nfrom dash import html\n"
        "app = dash.Dash(__name__)\napp.layout = html.Div('hello')\n" + source
    )
    env = dict(os.environ, HUB_VIZ_DASH_ENTRY="entry.py", DASH_URL_BASE_PATHNAME="/p/")
    out = subprocess.run(  # a fresh interpreter: this one imported Dash already
        [sys.executable, "-c", LOAD], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "ipython_loaded": ipython_loaded,
        "notebook_integration": False,
        "layout": 200,
        "app_saw": app_saw,
    }
