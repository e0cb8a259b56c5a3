"""Dashboards in environments of their own, open side by side in Chromium.

A Voilà notebook pinning ``hvtoy==1.0`` (with a live ipywidgets slider, so its
kernel websocket works from the environment's Python) and a Dash app pinning
``hvtoy==2.0`` (with a callback) are open in two tabs at once; with the CI
wheelhouse, a bqplot figure renders too.
"""

from __future__ import annotations

import time

import pytest

from ..conftest import PASSWORD, Hub, start_hub, stop_hub
from ..hub.test_environments import (
    BQPLOT_NOTEBOOK,
    WHEELHOUSE,
    need_wheelhouse,
    notebook,
    write_dashboard,
)
from ..wheels import version_package
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR = "ada"
VOILA = """import hvtoy
import ipywidgets as w

print(hvtoy.greet() + " in voila")
n = w.IntSlider(value=7, description="n")
out = w.Label()
def show(change=None):
    out.value = f"n squared is {n.value ** 2} with hvtoy {hvtoy.__version__}"
n.observe(show, "value")
show()
w.VBox([n, out])
"""
DASH = """
import dash
import hvtoy
from dash import Input, Output, dcc, html

app = dash.Dash(__name__)
server = app.server
app.layout = html.Div([html.P(f"{hvtoy.greet()} in dash"), dcc.Input(id="n", value=7,
                       type="number"), html.P(id="sq")])


@app.callback(Output("sq", "children"), Input("n", "value"))
def square(n):
    return f"n squared is {(n or 0) ** 2} with hvtoy {hvtoy.__version__}"
"""


@pytest.fixture(scope="module")
def env_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    state = tmp_path_factory.mktemp("env-browser-hub")
    version_package(state / "wheels", "hvtoy", ("1.0", "2.0"))
    find_links = [str(state / "wheels")]
    if WHEELHOUSE.is_dir():
        find_links.append(str(WHEELHOUSE))
    hub = start_hub(
        state, configure_kwargs={"environments": {"no_index": True, "find_links": find_links}}
    )
    write_dashboard(
        hub.root,
        "benv-voila",
        {"show.ipynb": notebook(VOILA), "requirements.txt": "hvtoy==1.0\nipywidgets\n"},
    )
    write_dashboard(hub.root, "benv-dash", {"app.py": DASH, "requirements.txt": "hvtoy==2.0\n"})
    write_dashboard(
        hub.root,
        "benv-bqplot",
        {"show.ipynb": notebook(BQPLOT_NOTEBOOK), "requirements.txt": "bqplot\n"},
    )
    yield hub
    stop_hub(hub)


def publish(hub: Hub, slug: str, entry: str) -> None:
    r = hub.svc("POST", "dashboards", AUTHOR, json={"title": slug, "slug": slug, "entry": entry})
    assert r.status_code == 201, r.text


def wait_for_text(page, text: str, timeout: float = 180) -> None:
    """Until some frame of ``page`` (the open page frames the dashboard) shows ``text``."""
    deadline = time.monotonic() + timeout
    while True:
        for frame in page.frames:
            try:
                if frame.get_by_text(text).count():
                    return
            except Exception:  # a frame navigating away
                pass
        assert time.monotonic() < deadline, f"{text!r} did not show"
        page.wait_for_timeout(250)


def test_two_pinned_versions_render_side_by_side(env_hub: Hub, browser) -> None:
    hub = env_hub
    publish(hub, "benv-voila", "benv-voila/show.ipynb")
    publish(hub, "benv-dash", "benv-dash/app.py")
    context, page = logged_in_page(browser, hub.url, AUTHOR, PASSWORD)
    try:
        second = context.new_page()
        page.goto(hub.service_url + f"open/{AUTHOR}/benv-voila")
        second.goto(hub.service_url + f"open/{AUTHOR}/benv-dash")
        wait_for_text(page, "hello from hvtoy 1.0 in voila")
        wait_for_text(page, "n squared is 49 with hvtoy 1.0")  # over the kernel websocket
        wait_for_text(second, "hello from hvtoy 2.0 in dash")
        wait_for_text(second, "n squared is 49 with hvtoy 2.0")  # a Dash callback
        # both still live, at the same time
        servers = hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
        assert servers["benv-voila"]["ready"] and servers["benv-dash"]["ready"]
    finally:
        context.close()


def test_a_bqplot_figure_renders(env_hub: Hub, browser) -> None:
    need_wheelhouse()
    hub = env_hub
    publish(hub, "benv-bqplot", "benv-bqplot/show.ipynb")
    context, page = logged_in_page(browser, hub.url, AUTHOR, PASSWORD)
    try:
        page.goto(hub.service_url + f"open/{AUTHOR}/benv-bqplot")
        wait_for_text(page, "squares")  # the figure's title, drawn by bqplot's front-end
        frame = next(f for f in page.frames if f.get_by_text("squares").count())
        assert frame.locator("svg.svg-figure .curve").count() >= 1  # and its line mark
    finally:
        context.close()
