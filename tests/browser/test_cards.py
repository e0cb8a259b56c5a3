"""Gallery cards are screenshots of rendered dashboards, taken without getting in a
viewer's way.

A real hub with thumbnails on (the service's own headless Chromium). The Voilà
notebook paints a big block whose colour says which kernel ran it: green for a
preheated kernel from the pool, blue for a kernel started for the page. The first
student's open of a dashboard with one warm kernel gets the preheated kernel and
renders; the card, taken once that page has loaded, shows the blue block (the
capture's own kernel, the dashboard rendered: neither Voilà's spinner nor the
students' kernel). A page that never renders (a notebook that never finishes, a
Streamlit page whose script never ends although the page has loaded) leaves the
card as it was.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import nbformat
import pytest
from PIL import Image

from ..conftest import Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES
from .test_publish import log_in

pytestmark = pytest.mark.browser

OWNER, STUDENT, STUDENT2 = "cards-teacher", "cards-student", "cards-student2"
READY_TIMEOUT = 45  # the service's thumbnail_ready_timeout here

KIND_CELL = """\
import os
preheated = os.environ.get("VOILA_PREHEAT") == "True"
"""
BLOCK_CELL = """\
from IPython.display import HTML
colour, label = ("#00b400", "preheated kernel") if preheated else ("#0000c8", "own kernel")
HTML(f'<div id="kernel-kind" style="height: 420px; background: {colour}; color: white">'
     f'{label}</div>')
"""


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("cards-hub"),
        isolated=True,  # the open page frames the dashboard across origins
        configure_kwargs={
            "extra_service_config": {
                "thumbnails": True,
                "thumbnail_ready_timeout": READY_TIMEOUT,
                "thumbnail_retry_seconds": 3600,
            }
        },
    )
    folder = running.root / "cards"
    folder.mkdir(exist_ok=True)
    # three cells, as the demo's example: "Executing 1 of 3" while it runs
    nbformat.write(notebook(KIND_CELL, BLOCK_CELL, "print('done')"), folder / "warm.ipynb")
    nbformat.write(
        notebook("import time\ntime.sleep(3600)", "print('never')"), folder / "never.ipynb"
    )
    (folder / "never_streamlit.py").write_text(
        "import time\n\nimport streamlit as st\n\nst.title('Still running')\ntime.sleep(3600)\n"
    )
    for name in (OWNER, STUDENT, STUDENT2):
        running.ensure_user(name)
    yield running
    stop_hub(running)


def card(hub: Hub, slug: str):
    r = hub.svc("GET", f"dashboards/{OWNER}/{slug}/thumbnail", OWNER)
    assert r.status_code == 200, r.text
    return r


def colour_share(png: bytes, rgb: tuple[int, int, int], tolerance: int = 40) -> float:
    """The share of the image's pixels within ``tolerance`` of ``rgb`` (each channel)."""
    data = Image.open(io.BytesIO(png)).convert("RGB").tobytes()
    pixels = [data[i : i + 3] for i in range(0, len(data), 3)]
    close = sum(all(abs(a - b) <= tolerance for a, b in zip(p, rgb, strict=True)) for p in pixels)
    return close / len(pixels)


def log_since(hub: Hub, start: int) -> str:
    return hub.log.read_bytes()[start:].decode(errors="replace")


def open_in_browser(hub: Hub, browser, viewer: str, slug: str):
    context, page = log_in(hub, browser, viewer)
    page.goto(f"{hub.service_url}open/{OWNER}/{slug}")
    kind = page.frame_locator("#dashboard-frame").locator("#kernel-kind")
    kind.wait_for(timeout=180_000)
    return context, kind.inner_text()


def test_first_student_renders_and_the_card_shows_the_rendered_dashboard(hub, browser):
    start = hub.log.stat().st_size
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "title": "Warm cards",
            "slug": "warm",
            "entry": "cards/warm.ipynb",
            "visibility": "all",
            "warm_kernels": 1,
        },
    )
    assert r.status_code == 201, r.text
    assert card(hub, "warm").headers["Content-Type"] == "image/svg+xml"  # nothing yet

    # The first student's open starts the dashboard; the page renders on the one
    # preheated kernel: the card's capture did not take it.
    context, kind = open_in_browser(hub, browser, STUDENT, "warm")
    assert kind == "preheated kernel"

    # The card comes once that page has loaded: the dashboard as rendered by a kernel of
    # the capture's own, not Voilà's spinner (white and orange) and not a pool kernel.
    png = wait_until(
        lambda: (r := card(hub, "warm")).headers["Content-Type"] == "image/png" and r.content,
        timeout=240,
        every=1,
        what="the card's screenshot",
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert colour_share(png, (0, 0, 200)) > 0.3, "the card is not the rendered dashboard"
    assert colour_share(png, (0, 180, 0)) == 0, "the card's page took a preheated kernel"
    log = log_since(hub, start)
    assert f"Took a card of {OWNER}/warm once its page rendered (voila check" in log
    assert f"Card of {OWNER}/warm not taken" not in log
    context.close()

    # The pool refilled for the next student: the capture left it alone.
    context, kind = open_in_browser(hub, browser, STUDENT2, "warm")
    assert kind == "preheated kernel"
    context.close()
    hub.svc("DELETE", f"dashboards/{OWNER}/warm", OWNER)


@pytest.mark.parametrize(
    ("slug", "entry"),
    [
        ("never-voila", "cards/never.ipynb"),  # the page streams cells that never finish
        ("never-streamlit", "cards/never_streamlit.py"),  # loads, its script never ends
    ],
)
def test_a_page_that_never_renders_stores_no_card(hub, slug, entry):
    start = hub.log.stat().st_size
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "title": "Never ready",
            "slug": slug,
            "entry": entry,
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    hub.open_ready(OWNER, slug, STUDENT)
    # What the open page sends once the dashboard's frame has loaded (a viewer may send
    # it whenever they like).
    r = hub.svc("POST", f"dashboards/{OWNER}/{slug}/rendered", STUDENT)
    assert r.status_code == 204, r.text
    wait_until(
        lambda: f"Card of {OWNER}/{slug} not taken" in log_since(hub, start),
        timeout=READY_TIMEOUT + 120,
        every=1,
        what="the capture to give up",
    )
    r = card(hub, slug)
    assert r.headers["Content-Type"] == "image/svg+xml", "a page that never rendered was stored"
    assert f"Took a card of {OWNER}/{slug}" not in log_since(hub, start)
    hub.svc("DELETE", f"dashboards/{OWNER}/{slug}", OWNER)


@pytest.mark.parametrize(
    "example", ["dash-example", "bokeh-example", "panel-example", "streamlit-example"]
)
def test_each_framework_s_card_waits_for_its_rendered_check(hub, example):
    """The examples' cards are taken once their framework's check saw the app rendered,
    and are not a blank page."""
    start = hub.log.stat().st_size
    slug = "card-" + example.removesuffix("-example")
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={"title": example, "slug": slug, "visibility": "all", **EXAMPLES[example][0]},
    )
    assert r.status_code == 201, r.text
    hub.open_ready(OWNER, slug, STUDENT)
    assert hub.svc("POST", f"dashboards/{OWNER}/{slug}/rendered", STUDENT).status_code == 204
    png = wait_until(
        lambda: (r := card(hub, slug)).headers["Content-Type"] == "image/png" and r.content,
        timeout=240,
        every=1,
        what="the card's screenshot",
    )
    framework = EXAMPLES[example][0]["framework"]
    assert f"Took a card of {OWNER}/{slug} once its page rendered ({framework} check" in log_since(
        hub, start
    )
    # the examples' rendered pages are 97-99 % white at this size; a blank page is all white
    assert colour_share(png, (255, 255, 255), tolerance=8) < 0.995, "a blank card"
    hub.svc("DELETE", f"dashboards/{OWNER}/{slug}", OWNER)
