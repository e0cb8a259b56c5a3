"""No XSRF token, OAuth code or grant in a URL the open page requests, nor in the log.

A viewer logs in, opens a dashboard that takes seconds to start (so the page
follows its progress stream), and watches it show. Every request the page
made is recorded; then the hub's log (the hub's, the service's and the
launchers' lines) is searched for the viewer's XSRF tokens and for query
values the service should have scrubbed.
"""

from __future__ import annotations

import re

import pytest

from ..conftest import SERVICE, Hub
from .test_publish import log_in

pytestmark = pytest.mark.browser

AUTHOR, VIEWER, SLUG = "logs-author", "logs-viewer", "logs-slow"
MARKER = "The slow board for the log tests is up"
SLOW_APP = f'''
import time

import dash
from dash import html

time.sleep(3)
app = dash.Dash(__name__, title="Slow")
app.layout = html.Div([html.P("{MARKER}")])
'''


@pytest.fixture(scope="module")
def hub(isolated_hub: Hub) -> Hub:
    """The default layout: the service and the dashboard on hosts of their own."""
    return isolated_hub


@pytest.fixture(scope="module")
def published(hub: Hub) -> str:
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    folder = hub.root / "log-tests"
    folder.mkdir(exist_ok=True)
    (folder / "slow.py").write_text(SLOW_APP)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Slow board",
            "slug": SLUG,
            "framework": "dash",
            "entry": "log-tests/slow.py",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    yield f"{AUTHOR}/{SLUG}"
    hub.svc("DELETE", f"dashboards/{AUTHOR}/{SLUG}", AUTHOR)


def test_the_open_flow_puts_no_token_in_urls_or_logs(hub: Hub, browser, published: str) -> None:
    before = hub.log.stat().st_size
    context, page = log_in(hub, browser, VIEWER)
    urls: list[str] = []
    progress_headers: list[dict[str, str]] = []

    def seen(request) -> None:
        urls.append(request.url)
        if request.url.endswith(f"{SERVICE}api/dashboards/{published}/progress"):
            progress_headers.append(request.headers)

    context.on("request", seen)
    page.goto(f"{hub.service_url}open/{published}")
    page.frame_locator("#dashboard-frame").get_by_text(MARKER).wait_for(timeout=120_000)
    xsrf = {c["value"] for c in context.cookies() if "xsrf" in c["name"]}
    shown = page.evaluate("JSON.parse(sessionStorage.getItem('hub-viz-progress') || '[]')")
    context.close()

    # the page followed the start through the progress stream, token in a header
    assert progress_headers, [u for u in urls if SERVICE in u]
    messages = [value for kind, value in shown if kind == "message"]
    assert "Server requested" in messages, shown  # the hub's events, read from the stream
    assert any(m.startswith("Waiting for Dash to answer") for m in messages), shown
    assert progress_headers[0].get("x-xsrftoken") in xsrf
    assert not [u for u in urls if "_xsrf" in u], urls

    with hub.log.open("rb") as log:
        log.seek(before)
        added = log.read().decode(errors="replace")
    assert re.search(rf"200 GET {re.escape(SERVICE)}api/dashboards/{published}/progress ", added), (
        added[-3000:]
    )
    assert xsrf and not [t for t in xsrf if t in added]
    # the service's access lines ("302 GET /services/hub-viz/oauth_callback?... (ip) 1.2ms")
    service_lines = [
        line
        for line in added.splitlines()
        if re.search(rf"\] \d{{3}} [A-Z]+ {re.escape(SERVICE)}", line)
    ]
    assert any("oauth_callback?code=[secret]&state=[secret]" in line for line in service_lines)
    for line in service_lines:
        for key, value in re.findall(r"[?&]([^=&\s]+)=([^&\s]*)", line):
            assert value == "[secret]" or key in ("q", "mine", "days", "v"), line
