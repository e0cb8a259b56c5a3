"""Gradio, Shiny, Marimo, Solara and NiceGUI apps in Chromium through a real hub.

A viewer opens each published example from the service's open page (the
isolated layout frames the dashboard from its own host); the live part
answers an interaction (an HTTP event stream or a websocket, through the
launcher), a reload shows the app again and a deep link reaches it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ..conftest import PASSWORD, Hub
from ..examples import MORE_EXAMPLES
from ..hub.test_more_frameworks import EXAMPLES_HERE, slug
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR, VIEWER = "mb-author", "mb-viewer"


def gradio_interact(frame) -> str:
    """Type 12 into the slider's number box: the app's function answers over its queue."""
    box = frame.locator('input[type="number"]').first
    box.fill("12")
    box.press("Enter")
    return "n squared is 144"


# example -> (interaction returning the text it must bring, deep link under the prefix,
#             text the deep link shows)
LIVE: dict[str, tuple[Callable, str, str]] = {
    "gradio-example": (gradio_interact, "?view=api", "API"),
}


@pytest.fixture(scope="module")
def published(hub: Hub) -> Iterator[None]:
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    for example in MORE_EXAMPLES:
        r = hub.svc("POST", "dashboards", AUTHOR, json={
            "slug": slug(example), "title": example, "visibility": "all",
            **MORE_EXAMPLES[example][0]})
        assert r.status_code == 201, r.text
    yield
    for example in MORE_EXAMPLES:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug(example)}", AUTHOR)


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_open_interact_reload_and_deep_link(hub: Hub, browser, published, example: str
                                            ) -> None:
    interact, deep_link, deep_text = LIVE[example]
    context, page = logged_in_page(browser, hub.url, VIEWER, PASSWORD)
    try:
        page.goto(hub.open_location(AUTHOR, slug(example)))
        frame = page.frame_locator("#dashboard-frame")
        frame.get_by_text(MORE_EXAMPLES[example][1]).first.wait_for(timeout=90_000)
        frame.get_by_text(interact(frame)).first.wait_for(timeout=60_000)

        page.reload()
        frame = page.frame_locator("#dashboard-frame")
        frame.get_by_text(MORE_EXAMPLES[example][1]).first.wait_for(timeout=60_000)

        base = hub.at(f"/user/{AUTHOR}/{slug(example)}/")
        page.goto(base + deep_link)
        page.get_by_text(deep_text).first.wait_for(timeout=60_000)
        assert page.url.startswith(base), page.url
    finally:
        context.close()
