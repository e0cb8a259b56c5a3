"""In Chromium: deep links and reloads through the hub show the app's own pages.

A Streamlit page named ``Files`` (a Jupyter route name) opened from a new tab
lands on the open page's full window and renders; reloading it renders again,
and neither load answers an error or a refused ping (the open page pings at
once on load). A Voilà notebook's links to itself, built from the request,
point at the URL in the viewer's address bar.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ..conftest import PASSWORD, Hub
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR = "tpb-author"
DATA = Path(__file__).resolve().parents[1] / "data" / "transparent"
FOLDER = "transparent"
APPS = {
    "tpb-streamlit": {"framework": "streamlit", "entry": f"{FOLDER}/streamlit/app.py"},
    "tpb-voila": {"framework": "voila", "entry": f"{FOLDER}/voila/links.ipynb"},
}


@pytest.fixture(scope="module")
def servers(hub: Hub) -> dict[str, str]:
    """Each app published (private: its author views it) and running; slug -> server URL."""
    shutil.copytree(DATA, hub.root / FOLDER, dirs_exist_ok=True)
    hub.ensure_user(AUTHOR)
    urls = {}
    for slug, spec in APPS.items():
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={"slug": slug, "title": slug, "visibility": "private", **spec},
        )
        assert r.status_code == 201, r.text
        owner, name = hub.open_ready(AUTHOR, slug, AUTHOR)["server"].split("/", 1)
        urls[slug] = hub.server_url(owner, name)
    yield urls
    for slug in APPS:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)


@pytest.fixture
def author_page(hub: Hub, browser):
    context, page = logged_in_page(browser, hub.url, AUTHOR, PASSWORD)
    yield page
    context.close()


def test_a_streamlit_page_named_files_opens_from_a_link_and_reloads(
    hub: Hub, servers, author_page
) -> None:
    page = author_page
    # Refusals, errors and rate limits; not 404s: on a page's path Streamlit's client
    # probes <page>/_stcore/health before its base path, bare as well.
    failed: list[str] = []
    page.on(
        "response",
        lambda r: r.status >= 400 and r.status != 404 and failed.append(f"{r.status} {r.url}"),
    )
    with page.expect_response(lambda r: r.url.endswith("/ping")) as first_ping:
        page.goto(servers["tpb-streamlit"] + "Files")
    frame = page.frame_locator("#dashboard-frame")
    frame.get_by_text("Files of the sales team").wait_for(timeout=90_000)
    assert first_ping.value.status == 204
    with page.expect_response(lambda r: r.url.endswith("/ping")) as reload_ping:
        page.reload()
    frame.get_by_text("Files of the sales team").wait_for(timeout=90_000)
    assert reload_ping.value.status == 204  # a reload within the window: not a 429
    assert not failed, failed
    # the page's own navigation to Terminals works in the frame too
    frame.get_by_text("Terminals").first.click()
    frame.get_by_text("Terminals in the warehouse").wait_for(timeout=60_000)
    assert not failed, failed


def test_voila_links_point_at_the_address_the_viewer_opened(hub: Hub, servers, author_page) -> None:
    page = author_page
    page.goto(servers["tpb-voila"] + "?region=north")
    frame = page.frame_locator("#dashboard-frame")
    frame.get_by_text("Sales for region north").wait_for(timeout=90_000)
    href = frame.locator("#self-link").get_attribute("href")
    shown = (
        page.frame_locator("#dashboard-frame")
        .locator("body")
        .evaluate("() => window.location.href")
    )
    assert href == shown == servers["tpb-voila"] + "?region=north", (href, shown)
