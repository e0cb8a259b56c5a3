"""The quick start (docs/operate/install.md): the demo hub (``jupyterhub_config.py``) opens every example.

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
CARDS.update(
    {
        title: "n squared is 49"
        for title, module in (
            ("Gradio example", "gradio"),
            ("Shiny example", "shiny"),
            ("marimo example", "marimo"),
            ("Solara example", "solara"),
            ("NiceGUI example", "nicegui"),
        )
        if importlib.util.find_spec(module) is not None
    }
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    need_localhost_names()
    port = free_port()
    state = tmp_path_factory.mktemp("demo")
    password = secrets.token_hex(8)
    env = {
        "HUB_VIZ_DEMO_STATE": str(state),
        "HUB_VIZ_DEMO_PORT": str(port),
        "HUB_VIZ_DEMO_PASSWORD": password,
        "HUB_VIZ_DEMO_ADMIN_PASSWORD": password * 2,
    }
    hub = run_hub(
        REPO / "jupyterhub_config.py",
        port=port,
        token="",
        root=REPO / "examples",
        env=env,
        layout=Layout(f"http://hub.localhost:{port}"),
        log=state / "hub.log",
    )
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


def test_the_tour(demo, browser):
    """The ten-minute tour (docs/use/tour.md), step by step, as written."""
    hub, password = demo
    service = Layout(f"{urlsplit(hub.url).scheme}://{urlsplit(hub.url).netloc}").service_url

    # 1. Publish: instructor shares a Dash dashboard with the course from the form
    context, page = logged_in_page(browser, hub.url, "instructor", password)
    page.locator("#hub-viz-gallery #hub-viz-publish").click()
    page.wait_for_url("**/publish")
    page.locator("#framework option[value=dash]").wait_for(state="attached")  # choices loaded
    hint = page.locator("#my-groups-hint").inner_text()
    assert "Data Science 101 (course-101)" in hint, hint  # the course they teach, by title
    page.fill("#title", "Squares for 101")
    page.fill("#entry", "dash/app.py")
    page.select_option("#visibility", "groups")
    page.fill("#share-groups", "course-101")
    page.click("#publish-submit")
    page.wait_for_url("**/d/instructor/*")
    manage_url = page.url
    ref = manage_url.split("/d/", 1)[1]
    assert page.locator("h1").inner_text() == "Squares for 101"
    assert "course-101" in page.locator("#manage").inner_text()
    page.goto(f"{hub.url}/hub/home")
    card = page.locator(f'.hub-viz-card[data-dashboard="{ref}"]')
    assert card.locator(".hub-viz-status").inner_text() == "stopped"  # nothing runs yet

    # 2. Open as a student of the course; someone outside it sees nothing
    student, alice = logged_in_page(browser, hub.url, "alice", password)
    alice.locator(".hub-viz-card", has_text="Squares for 101").get_by_role(
        "link", name="Open"
    ).click()
    alice.frame_locator("#dashboard-frame").get_by_text(CARDS["Dash example"]).wait_for(
        timeout=120_000
    )
    student.close()
    outsider, dave = logged_in_page(browser, hub.url, "dave", password)
    dave.locator("#hub-viz-gallery #hub-viz-search").wait_for()  # the gallery has loaded
    dave.locator(".hub-viz-card", has_text="Dash example").wait_for()
    assert dave.locator(".hub-viz-card", has_text="Squares for 101").count() == 0
    assert dave.goto(f"{service}open/{ref}").status == 404
    outsider.close()

    # 3. Usage: alice's open, and who started the running instance
    page.goto(manage_url)
    page.get_by_role("link", name="Usage").click()
    page.wait_for_url("**/usage")
    opens = page.locator("#usage-figures tr", has_text="Opens / distinct viewers")
    assert opens.locator("td").inner_text() == "1 / 1"
    first = page.locator("#deployments tbody tr").first
    assert "alice" in first.inner_text() and "running" in first.inner_text()
    assert " UTC" in first.inner_text()  # a readable time, not a raw timestamp

    # 4. Embed: a link for the course site that needs a login
    page.goto(manage_url)
    page.fill("#embed-origins", "https://canvas.example.edu")
    assert not page.locator("#embed-anonymous").is_checked()
    page.click("#embed-create")
    snippet = page.locator("#embeds tbody tr").last.locator(".embed-snippet")
    snippet.wait_for()
    assert snippet.input_value().startswith(f'<iframe src="{service}embed/')
    context.close()

    # 5. Admin: the hub's admin page
    context, page = logged_in_page(browser, hub.url, "admin", password * 2)
    page.get_by_role("link", name="Admin").click()
    page.wait_for_url("**/hub/admin*")
    page.get_by_text("instructor").first.wait_for()
    context.close()
