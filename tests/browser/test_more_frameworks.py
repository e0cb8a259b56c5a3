"""Gradio, Shiny, Marimo, Solara and NiceGUI apps in Chromium through a real hub.

A viewer opens each published example from the service's open page (the
isolated layout frames the dashboard from its own host); the live part
answers an interaction (an HTTP event stream or a websocket, through the
launcher), a reload shows the app again and a deep link reaches it too.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

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


def shiny_interact(frame) -> str:
    """Move the slider one step with the keyboard: Shiny recomputes over its websocket."""
    handle = frame.locator(".irs-handle").first
    handle.click()
    handle.press("ArrowRight")
    return "n squared is 64"


def marimo_interact(frame) -> str:
    """Move the slider one step: marimo posts the value, the output comes on its websocket."""
    frame.locator('[role="slider"]').first.click()
    frame.locator('[role="slider"]').first.press("ArrowRight")
    return "n squared is 64"


def solara_interact(frame) -> str:
    """One step right with the keyboard: the slider's widget message goes over the kernel
    websocket (through the launcher's message filter), the new Markdown comes back."""
    frame.locator('[role="slider"]').first.focus()
    frame.locator('[role="slider"]').first.press("ArrowRight")
    return "n squared is 64"


def nicegui_interact(frame) -> str:
    """Click the slider's left end (n = 1), then one step right: each change is an event
    on NiceGUI's socket.io websocket, the label comes back as an update."""
    slider = frame.locator('[role="slider"]').first
    box = slider.bounding_box()
    slider.click(position={"x": 2, "y": box["height"] / 2})
    slider.press("ArrowRight")
    return "n squared is 4"


# example -> (interaction returning the text it must bring, deep link under the prefix,
#             text the deep link shows)
LIVE: dict[str, tuple[Callable, str, str]] = {
    "gradio-example": (gradio_interact, "?view=api", "API"),
    # A Shiny app is one page: a link into it is the page with its own query.
    "shiny-example": (shiny_interact, "?from=course-site", "Sum of squares 1..800"),
    # marimo's app page is one page too.
    "marimo-example": (marimo_interact, "?from=course-site", "Sum of squares 1..900"),
    "solara-example": (solara_interact, "?from=course-site", "Sum of squares 1..1000"),
    "nicegui-example": (nicegui_interact, "?from=course-site", "Sum of squares 1..1100"),
}


@pytest.fixture(scope="module")
def published(hub: Hub) -> Iterator[None]:
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    for example in MORE_EXAMPLES:
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={
                "slug": slug(example),
                "title": example,
                "visibility": "all",
                **MORE_EXAMPLES[example][0],
            },
        )
        assert r.status_code == 201, r.text
    yield
    for example in MORE_EXAMPLES:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug(example)}", AUTHOR)


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_open_interact_reload_and_deep_link(hub: Hub, browser, published, example: str) -> None:
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
        # a dashboard URL loaded as a page opens in the open page's full window, which
        # frames the page asked for
        assert page.url.startswith(hub.open_location(AUTHOR, slug(example)) + "?chrome=0"), page.url
        page.frame_locator("#dashboard-frame").get_by_text(deep_text).first.wait_for(timeout=60_000)
        framed = next(f.url for f in page.frames if f"/user/{AUTHOR}/" in f.url)
        assert framed.startswith(base) and deep_link.lstrip("?") in framed, framed
    finally:
        context.close()


def shipped_file(module: str, *parts: str) -> Path:
    """A file the framework's own package ships (its example apps, under their license)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"{module} is not installed")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        pytest.skip(f"{module} no longer ships {'/'.join(parts)}")
    return path


def shiny_basic_app(frame) -> str:
    frame.get_by_text("n*2 is 40").first.wait_for(timeout=60_000)
    handle = frame.locator(".irs-handle").first
    handle.click()
    handle.press("ArrowRight")
    return "n*2 is 42"


def marimo_ui_tutorial(frame) -> str:
    frame.get_by_text("here's its value: 1").first.wait_for(timeout=60_000)
    frame.locator('[role="slider"]').first.click()
    frame.locator('[role="slider"]').first.press("ArrowRight")
    return "here's its value: 2"


def solara_calculator(frame) -> str:
    for key in ("7", "+", "8", "="):
        frame.get_by_role("button", name=key, exact=True).click()
    return "15"


# name -> (module, file it ships, text the page shows first, interaction)
THIRD_PARTY = {
    # Shiny's own "basic app" template (`shiny create`), MIT-licensed with the package.
    "shiny-basic": (
        "shiny",
        ("templates", "app", "01-basic-app", "app-core.py"),
        "Hello Shiny!",
        shiny_basic_app,
    ),
    # marimo's "ui" tutorial (`marimo tutorial ui`), Apache-2.0 with the package, as an app.
    "marimo-ui": ("marimo", ("_tutorials", "ui.py"), "UI elements", marimo_ui_tutorial),
    # The calculator from Solara's documentation examples, MIT-licensed with the package.
    "solara-calculator": (
        "solara",
        ("website", "pages", "documentation", "examples", "utilities", "calculator.py"),
        "AC",
        solara_calculator,
    ),
}


@pytest.mark.parametrize("name", list(THIRD_PARTY))
def test_a_framework_s_own_example_app_works_through_the_hub(hub: Hub, browser, name: str) -> None:
    module, parts, first_text, interact = THIRD_PARTY[name]
    source = shipped_file(module, *parts)
    folder = hub.root / "third-party" / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / "app.py")
    hub.ensure_user(AUTHOR)
    hub.ensure_user(VIEWER)
    # No framework named: the service detects it from the file's imports.
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": f"tp-{name}",
            "title": name,
            "visibility": "all",
            "entry": f"third-party/{name}/app.py",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["framework"] == module, r.json()
    context, page = logged_in_page(browser, hub.url, VIEWER, PASSWORD)
    try:
        page.goto(hub.open_location(AUTHOR, f"tp-{name}"))
        frame = page.frame_locator("#dashboard-frame")
        frame.get_by_text(first_text).first.wait_for(timeout=90_000)
        frame.get_by_text(interact(frame)).first.wait_for(timeout=60_000)
        page.reload()
        page.frame_locator("#dashboard-frame").get_by_text(first_text).first.wait_for(
            timeout=60_000
        )
    finally:
        context.close()
        hub.svc("DELETE", f"dashboards/{AUTHOR}/tp-{name}", AUTHOR)
