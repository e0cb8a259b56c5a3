"""Files a marimo app makes (``@file/`` virtual files) reach its viewers through a real hub.

``mo.image`` and ``mo.download`` put their bytes into the session's virtual
files and the page fetches them from ``@file/<length>-<name>`` under the
server's prefix. Through hub_viz a viewer of a shared dashboard gets the
image and the download their session shows, with the type and bytes marimo
serves, while the routes around them stay refused.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import uuid
from collections.abc import Iterator

import pytest

from ..conftest import Hub
from .test_session_binding import AUTHOR, VIEWER_A, Viewer, read_until

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        importlib.util.find_spec("marimo") is None, reason="marimo is not installed"
    ),
]

SLUG = "mf-marimo-files"
# A 1x1 PNG, and a CSV large enough that no one would inline it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
CSV = "".join(f"{i},{i * i}\n" for i in range(5000))

APP = f"""
import marimo

app = marimo.App()


@app.cell
def _():
    import base64

    import marimo as mo

    image = mo.image(src=base64.b64decode({base64.b64encode(PNG).decode()!r}), alt="dot")
    table = mo.download(data={CSV!r}.encode(), filename="squares.csv", label="Squares")
    mo.vstack([image, table])
    return
"""


@pytest.fixture(scope="module")
def viewer(hub: Hub) -> Iterator[Viewer]:
    folder = hub.root / "sessions"
    folder.mkdir(exist_ok=True)
    (folder / "marimo_files.py").write_text(APP)
    for name in (AUTHOR, VIEWER_A):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": SLUG,
            "title": "marimo files",
            "visibility": "all",
            "framework": "marimo",
            "entry": "sessions/marimo_files.py",
        },
    )
    assert r.status_code == 201, r.text
    yield Viewer(hub, VIEWER_A, SLUG)
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


def test_images_and_downloads_a_session_makes_reach_its_viewer(viewer: Viewer) -> None:
    ws = viewer.connect(f"s-{uuid.uuid4().hex[:12]}")
    try:
        shown = read_until(ws, "squares.csv")
    finally:
        ws.close()
    files = dict.fromkeys(re.findall(r"\./@file/(\d+-[\w.-]+)", shown))
    assert len(files) == 2, shown[-2000:]
    got = {}
    for name in files:
        r = viewer.http.get(viewer.base + "@file/" + name, timeout=60)
        assert r.status_code == 200, (name, r.status_code, r.text[:200])
        got[r.headers["Content-Type"].split(";")[0]] = r.content
    assert got["image/png"] == PNG
    assert got["text/csv"].decode() == CSV
    # a malformed name is marimo's 404, not the launcher's refusal
    r = viewer.http.get(viewer.base + "@file/nothing.csv", timeout=60)
    assert r.status_code == 404 and "Invalid virtual file request" in r.text
    # a name no session made is not served (marimo 0.25 fails it after starting the
    # response), and the files go on being served
    r = viewer.http.get(viewer.base + "@file/12-nothing.csv", timeout=60)
    assert r.status_code != 200
    name = next(n for n in files if n.endswith(".png"))
    assert viewer.http.get(viewer.base + "@file/" + name, timeout=60).content == PNG
