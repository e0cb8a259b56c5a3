"""The README's quick start: the demo hub (``jupyterhub_config.py``) opens every example.

Run as ``hub-viz demo`` runs it, on the isolated layout at ``hub.localhost``:
a student logs in, opens each card from the home page and uses the dashboard,
which runs on a host of its own, framed by the service's open page.
"""

from __future__ import annotations

import importlib.util
import secrets
from urllib.parse import urlsplit

import pytest

from hub_viz.layout import Layout

from ..conftest import REPO, free_port, need_localhost_names, run_hub, stop_hub
from .conftest import logged_in_page
from .test_render import LIVE_TEXT

pytestmark = pytest.mark.browser

CARDS = {  # card title on the demo's home page -> what only the live app shows
    "Voilà example": LIVE_TEXT["voila-example"],
    "Dash example": LIVE_TEXT["dash-example"],
    "Bokeh example": LIVE_TEXT["bokeh-example"],
    "Panel example": LIVE_TEXT["panel-example"],
    "Streamlit example": LIVE_TEXT["streamlit-example"],
}
# The newer frameworks' cards, where their packages are installed (the `test` extra has them).
CARDS.update({
    title: "n squared is 49"
    for title, module in (("Gradio example", "gradio"), ("Shiny example", "shiny"),
                          ("marimo example", "marimo"), ("Solara example", "solara"),
                          ("NiceGUI example", "nicegui"))
    if importlib.util.find_spec(module) is not None
})


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    need_localhost_names()
    port = free_port()
    state = tmp_path_factory.mktemp("demo")
    password = secrets.token_hex(8)
    env = {"HUB_VIZ_DEMO_STATE": str(state), "HUB_VIZ_DEMO_PORT": str(port),
           "HUB_VIZ_DEMO_PASSWORD": password}
    hub = run_hub(REPO / "jupyterhub_config.py", port=port, token="", root=REPO / "examples",
                  env=env, layout=Layout(f"http://hub.localhost:{port}"), log=state / "hub.log")
    yield hub, password
    stop_hub(hub)


@pytest.mark.parametrize("title", list(CARDS))
def test_a_student_opens_each_example_from_the_home_page(demo, browser, title):
    hub, password = demo
    context, page = logged_in_page(browser, hub.url, "student", password)
    page.locator(".hub-viz-card", has_text=title).get_by_role("link", name="Open").click()
    page.frame_locator("iframe").get_by_text(CARDS[title]).first.wait_for(timeout=120_000)
    frame = next(f for f in page.frames if "/user/instructor/" in f.url)
    # the dashboard on a host of its own, the open page on the service's
    assert urlsplit(frame.url).hostname not in {"hub.localhost", urlsplit(page.url).hostname}
    assert urlsplit(page.url).hostname == "hub-viz--service.hub.localhost"
    context.close()
