"""A Voilà dashboard page loads nothing from outside the hub.

Every request of a viewer opening a Voilà dashboard through the real hub
(the service's open page, the dashboard's own host, its websockets) is
recorded in Chromium: none may go to a host other than the hub's, on the
isolated layout ``*.hub.localhost``. Voilà's own template links Font
Awesome from a CDN (which fails offline and tells a third party who looks at
which dashboard); hub_viz serves it with its ``hub-viz`` template instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from ..conftest import ISOLATED_DOMAIN, PASSWORD, Hub
from ..examples import EXAMPLES
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

OWNER, SLUG = "op-author", "offline-voila"
TEXT = EXAMPLES["voila-example"][1]


def is_hub_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == ISOLATED_DOMAIN or host.endswith("." + ISOLATED_DOMAIN)


def test_a_voila_page_load_requests_nothing_outside_the_hub(hub: Hub, browser) -> None:
    assert hub.layout.isolated
    hub.ensure_user(OWNER)
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={
            "title": "Offline Voilà",
            "slug": SLUG,
            "entry": "voila/dashboard.ipynb",
            "framework": "voila",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    context, page = logged_in_page(browser, hub.url, "op-viewer", PASSWORD)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    try:
        page.goto(f"{hub.service_url}open/{OWNER}/{SLUG}")
        page.frame_locator("iframe").get_by_text(TEXT).wait_for(timeout=180_000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2000)  # late stylesheets, fonts and icons
    finally:
        context.close()
    web = [url for url in requests if url.startswith(("http:", "https:", "ws:", "wss:"))]
    voila = [url for url in web if "/voila/" in url]
    assert voila, "the Voilà page's own assets were not recorded"
    assert any(url.startswith("ws") and "/api/kernels/" in url for url in web)
    outside = sorted({url for url in web if not is_hub_host(url)})
    assert outside == [], f"requests left the hub: {outside}"
