"""An operator's own framework (``c.DashboardSettings.extra_frameworks``, set after
``configure()`` as docs/explanation/frameworks.md shows) is published from the service's API and opened
through a real hub: the service accepts it and the spawner runs it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..conftest import Hub, start_hub, stop_hub

pytestmark = pytest.mark.hub

# A framework no hub_viz release knows: a plain HTTP server that names itself.
APP = """
import http.server
import sys

port, prefix = int(sys.argv[1]), sys.argv[2]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"tinyhttp answers {6 * 7} under {prefix}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

OPERATOR_CONFIG = """
c.DashboardSettings.extra_frameworks = {
    "tinyhttp": {
        "display_name": "Tiny HTTP",
        "command": ["{python}", "{entry}", "{port}", "{prefix}"],
        "suffixes": [".tiny"],
    },
}
c.DashboardSettings.allowed_frameworks = ["dash", "tinyhttp"]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("operator-framework-hub"), extra_config=OPERATOR_CONFIG
    )
    try:
        yield running
    finally:
        stop_hub(running)


def write_app(hub: Hub) -> None:
    folder = Path(hub.root) / "tiny"
    folder.mkdir(exist_ok=True)
    (folder / "server.tiny").write_text(APP)


def test_an_operators_framework_is_published_and_opened(hub: Hub) -> None:
    author, viewer = "api-owner", "opfw-viewer"
    for name in (author, viewer):
        hub.ensure_user(name)
    write_app(hub)
    info = hub.svc("GET", "info", author)
    assert info.status_code == 200, info.text
    r = hub.svc(
        "POST",
        "dashboards",
        author,
        json={
            "title": "Tiny",
            "slug": "tiny",
            "entry": "tiny/server.tiny",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["framework"] == "tinyhttp"  # detected from the operator's record
    try:
        r = hub.svc("POST", f"dashboards/{author}/tiny/open", viewer)
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] != "ready":
            hub.wait(author, "tiny")
            body = hub.svc("POST", f"dashboards/{author}/tiny/open", viewer).json()
        assert body["status"] == "ready", body
        page = requests.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200, page.text
        assert f"tinyhttp answers 42 under /user/{author}/tiny/" in page.text
    finally:
        r = hub.svc("DELETE", f"dashboards/{author}/tiny", author)
        assert r.status_code == 204, r.text


def test_a_framework_the_operator_did_not_allow_is_refused(hub: Hub) -> None:
    author = "api-owner"
    hub.ensure_user(author)
    r = hub.svc(
        "POST",
        "dashboards",
        author,
        json={
            "title": "Bokeh",
            "slug": "not-allowed",
            "entry": "bokeh/app.py",
            "framework": "bokeh",
            "visibility": "private",
        },
    )
    assert r.status_code == 400, r.text
    assert "'bokeh' framework is not enabled on this hub; allowed: dash, tinyhttp" in r.text
