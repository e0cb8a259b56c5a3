"""What a Solara page loads comes through the launcher as it comes bare: same size, same caching.

A Solara page pulls about 1.5 MB of scripts, styles and fonts from its own
server (``_solara/cdn/…``, ``static/…``), compressed (brotli or gzip) and,
for versioned files, ``Cache-Control: public, max-age=31536000, immutable``.
Through a real hub, each asset the page names answers the viewer with the
same status, encoding, length, validators and caching headers as the same
app served bare under the same prefix, and the same bytes; an answer bare
sends without ``Cache-Control`` gets ``private`` (kept out of shared caches:
it is for a viewer the launcher let in; the browser's own cache and
revalidation work as bare, a ``304`` included).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from ..conftest import BROWSER_UA, REPO, Hub, free_port
from ..examples import MORE_EXAMPLES

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        importlib.util.find_spec("solara") is None, reason="solara is not installed"
    ),
]

AUTHOR, VIEWER, SLUG = "sa-author", "sa-viewer", "sa-solara"
# What Chromium sends.
ACCEPT = {"Accept-Encoding": "gzip, deflate, br, zstd", "User-Agent": BROWSER_UA}
COMPARED = (
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "Cache-Control",
    "ETag",
    "Last-Modified",
    "Vary",
)


@pytest.fixture(scope="module")
def viewer(hub: Hub) -> Iterator[tuple[requests.Session, str]]:
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": SLUG,
            "title": "Solara",
            "visibility": "all",
            **MORE_EXAMPLES["solara-example"][0],
        },
    )
    assert r.status_code == 201, r.text
    body = hub.open_ready(AUTHOR, SLUG, VIEWER)
    session = requests.Session()
    session.headers.update(ACCEPT)
    assert session.get(hub.public(body["url"]), timeout=60).status_code == 200
    owner, server = body["server"].split("/", 1)
    yield session, hub.at(f"/user/{owner}/{server}/")
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


@pytest.fixture(scope="module")
def bare(hub: Hub, viewer) -> Iterator[str]:
    """The same app, bare (the launcher's runner, no launcher) under the same prefix."""
    _, base = viewer
    prefix = "/" + base.split("/", 3)[3]
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub_viz.runners.solara",
            "solara/app.py",
            f"--port={port}",
            f"--prefix={prefix}",
        ],
        cwd=hub.root,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "SOLARA_MODE": "production",
            "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}{prefix}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "readyz", timeout=5).status_code < 500:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the bare Solara app did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def assets(page: str, prefix: str) -> list[str]:
    """The app's own files a Solara page names, as paths under the prefix."""
    found = re.findall(r'(?:src|href)="([^"]+)"', page)
    own = [u[len(prefix) :] if u.startswith(prefix) else u for u in found]
    return sorted({u for u in own if not u.startswith(("http:", "https:", "/", "#"))})


def test_assets_through_the_launcher_match_bare(viewer, bare) -> None:
    session, base = viewer
    prefix = "/" + base.split("/", 3)[3]
    page = session.get(base, timeout=60)
    assert page.status_code == 200
    names = assets(page.text, prefix)
    assert len([n for n in names if n.startswith("_solara/cdn/")]) >= 4, names
    # what the page's scripts and styles load next: the fonts its fonts.css names, the
    # widget scripts from Jupyter's nbextensions (kept by the launcher's Solara rules)
    fonts_css = next(n for n in names if n.endswith("/fonts.css"))
    folder = fonts_css.rsplit("/", 1)[0]
    fonts = re.findall(r"url\(([^)]+\.woff2)\)", session.get(base + fonts_css, timeout=60).text)
    assert fonts, "fonts.css names no woff2 font"
    names += [f"{folder}/{f.strip(chr(39) + chr(34)).removeprefix('./')}" for f in fonts[:2]]
    names += [
        "jupyter/nbextensions/jupyter-vuetify/nodeps.js",
        "jupyter/nbextensions/jupyter-vue/nodeps.js",
    ]
    differences = {}
    total = 0
    for name in names:
        via = session.get(base + name, timeout=60, stream=True)
        raw_via = via.raw.read(decode_content=False)
        direct = requests.get(bare + name, headers=ACCEPT, timeout=60, stream=True)
        raw_direct = direct.raw.read(decode_content=False)
        assert via.status_code == direct.status_code == 200, (name, via.status_code)
        for header in COMPARED:
            wanted = direct.headers.get(header)
            if header == "Cache-Control" and wanted is None:
                wanted = "private"
            if via.headers.get(header) != wanted:
                differences[(name, header)] = (direct.headers.get(header), via.headers.get(header))
        if len(raw_via) != len(raw_direct):
            differences[(name, "bytes on the wire")] = (len(raw_direct), len(raw_via))
        total += len(raw_via)
        # a revalidation answers 304 through the launcher when it does bare
        if direct.headers.get("ETag"):
            again = {"If-None-Match": direct.headers["ETag"]}
            bare_again = requests.get(bare + name, headers={**ACCEPT, **again}, timeout=60)
            via_again = session.get(base + name, headers=again, timeout=60)
            if via_again.status_code != bare_again.status_code:
                differences[(name, "revalidation")] = (
                    bare_again.status_code,
                    via_again.status_code,
                )
    assert not differences, differences
    assert total > 100_000  # the page's scripts came compressed, not missing
