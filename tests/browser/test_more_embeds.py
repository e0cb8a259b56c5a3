"""Anonymous embed links of Gradio, Shiny, marimo, Solara, NiceGUI and Streamlit dashboards.

Each example is published publicly with an anonymous embed link for a course
site on another loopback address (another site, as a course platform is);
the course page frames the link, the app renders in the frame of a browser
not logged in to the hub, and an interaction answers (for the frameworks
whose sessions the launcher binds to their viewer, that binding holds across
the requests of one framed page). Solara's page reads ``localStorage``, which
a browser that blocks third-party cookies (this Chromium does) denies to a
frame from another site: its record's ``embed_note`` says so, and the manage
page shows it beside the embed form.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS

from ..conftest import BROWSER_UA, Hub
from ..examples import EXAMPLES, MORE_EXAMPLES
from ..hub.test_more_frameworks import EXAMPLES_HERE
from .test_embed import CourseSite, course_page
from .test_more_frameworks import LIVE

pytestmark = pytest.mark.browser

AUTHOR = "me-author"


def streamlit_interact(frame) -> str:
    """Move the slider one step: the rerun goes over Streamlit's websocket."""
    frame.locator("input[type=range]").first.press("ArrowRight")
    return "n squared is 64"


SPECS = {name: MORE_EXAMPLES[name][:2] for name in MORE_EXAMPLES}
SPECS["streamlit-example"] = EXAMPLES["streamlit-example"]
INTERACT = {name: LIVE[name][0] for name in LIVE} | {"streamlit-example": streamlit_interact}


@pytest.fixture(scope="module")
def site() -> Iterator[CourseSite]:
    course = CourseSite()
    yield course
    course.close()


# Frameworks whose record says their embeds do not work everywhere (embed_note).
NOT_EMBEDDED = ("solara-example",)
EMBEDDED = [p for p in EXAMPLES_HERE if p.values[0] not in NOT_EMBEDDED]


@pytest.mark.parametrize("example", [*EMBEDDED, "streamlit-example"])
def test_an_anonymous_embed_renders_and_answers(hub: Hub, browser, site, example: str) -> None:
    spec, text = SPECS[example]
    slug = "me-" + example.removesuffix("-example")
    hub.ensure_user(AUTHOR)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={"slug": slug, "title": example, "visibility": "public", **spec},
    )
    assert r.status_code == 201, r.text
    context = None
    try:
        r = hub.svc(
            "POST",
            f"dashboards/{AUTHOR}/{slug}/embeds",
            AUTHOR,
            json={"origins": [site.origin], "anonymous": True},
        )
        assert r.status_code == 201, r.text
        site.pages[f"/{slug}.html"] = course_page(r.json()["url"])
        context = browser.new_context(
            user_agent=BROWSER_UA, viewport={"width": 1200, "height": 900}
        )
        page = context.new_page()
        page.goto(f"{site.origin}/{slug}.html")
        frame = page.frame_locator("#embedded").frame_locator("#dashboard-frame")
        frame.get_by_text(text).first.wait_for(timeout=120_000)
        frame.get_by_text(INTERACT[example](frame)).first.wait_for(timeout=60_000)
    finally:
        if context is not None:
            context.close()
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)


def test_the_manage_and_publish_pages_say_why_a_solara_embed_may_stay_blank(hub: Hub) -> None:
    note = BUILTIN_FRAMEWORKS["solara"].embed_note
    assert "local storage" in note
    hub.ensure_user(AUTHOR)
    info = hub.svc("GET", "info", AUTHOR).json()
    notes = {f["name"]: f["embed_note"] for f in info["frameworks"]}
    assert notes["solara"] == note and notes["gradio"] == ""
    spec, _ = SPECS["solara-example"]
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={"slug": "me-solara-note", "title": "Solara", "visibility": "public", **spec},
    )
    assert r.status_code == 201, r.text
    try:
        page = hub.login(AUTHOR).get(f"{hub.service_url}d/{AUTHOR}/me-solara-note", timeout=60)
        assert page.status_code == 200
        assert 'id="embed-note"' in page.text and "local storage" in page.text
    finally:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/me-solara-note", AUTHOR)
