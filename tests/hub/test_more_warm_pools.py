"""Warm pools of Gradio, Shiny, marimo, Solara and NiceGUI dashboards through a real hub.

A per-viewer dashboard of each framework with ``warm_pool: 1`` has an
instance started ahead; the next viewer is handed that instance at once (no
start), its page comes from the app through the launcher and the app's own
live route answers with what only its running code computes; nobody else
reaches that viewer's instance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from ..conftest import BROWSER_UA, Hub, running_test_hub, wait_until
from ..examples import MORE_EXAMPLES
from .test_more_frameworks import (
    DATA_ROUTES,
    EXAMPLES_HERE,
    kernel_message,
    replies,
    solara_kernel,
    websocket_text,
)
from .test_warm_starts import POOL, open_as, pool_servers, ready_pool

pytestmark = pytest.mark.hub

AUTHOR, VIEWER, OTHER = "wp-author", "wp-viewer", "wp-other"


@pytest.fixture(scope="module")
def pool_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_test_hub(
        tmp_path_factory.mktemp("more-warm-hub"),
        warm_pool_ceiling=2,
        service={"warm_pool_interval": 1, "thumbnails": False},
    ) as hub:
        yield hub


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_a_warm_pool_instance_serves_its_viewer(pool_hub: Hub, example: str) -> None:
    hub = pool_hub
    for name in (AUTHOR, VIEWER, OTHER):
        hub.ensure_user(name)
    slug = "wp-" + example.removesuffix("-example")
    spec = MORE_EXAMPLES[example][0]
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": slug,
            "title": example,
            "visibility": "all",
            **spec,
            "mode": "per-viewer",
            "warm_pool": 1,
        },
    )
    assert r.status_code == 201, r.text
    try:
        warm = wait_until(lambda: ready_pool(hub), 120, what="a warm instance")
        body = open_as(hub, VIEWER, f"{AUTHOR}/{slug}")
        assert body["status"] == "ready", body
        owner, name = body["server"].split("/")
        assert owner == POOL and name in warm
        session = requests.Session()
        session.headers["User-Agent"] = BROWSER_UA
        first = session.get(hub.public(body["url"]), timeout=60)
        assert first.status_code == 200, first.text[:300]
        inst = {"session": session, "base": hub.server_url(POOL, name)}
        path, text = DATA_ROUTES[example]
        if path == "ws":
            assert text in websocket_text(hub, inst, text)
        elif path == "kernel":
            ws, _ = solara_kernel(inst)
            try:
                ws.send(kernel_message("kernel_info_request"))
                assert "kernel_info_reply" in replies(ws, "kernel_info_reply")
            finally:
                ws.close()
        else:
            r = session.get(inst["base"] + path, timeout=60)
            assert r.status_code == 200 and text in r.text, (r.status_code, r.text[:300])
        # the instance is this viewer's: another user is not let in
        r = hub.login(OTHER).get(
            inst["base"] + path.replace("ws", "").replace("kernel", ""),
            timeout=30,
            allow_redirects=False,
        )
        assert r.status_code in (302, 403) and text not in r.text, r.status_code
    finally:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug}", AUTHOR)
        wait_until(lambda: not pool_servers(hub), 120, what="the pool to be emptied")
