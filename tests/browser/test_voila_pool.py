"""The open page tells a viewer who finds every preheated Voilà kernel taken, with the
wait the instance measured, and drops the note once the dashboard has loaded.

A real hub and real Voilà: a dashboard with one preheated kernel, a notebook that
takes a few seconds, and no memory on its instance for one more kernel (so the pool
cannot grow ahead). Three students open it at once; a fourth, in the browser, opens
it while the pool's one kernel is being replaced.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..conftest import RESOURCES, Hub, start_hub, stop_hub, wait_until
from ..hub.test_voila_pool import EXTRA_CONFIG, SLOW_NOTEBOOK, SLOW_TEXT, open_page, start_warm
from .test_publish import log_in

pytestmark = pytest.mark.browser

SLUG = "tight"  # EXTRA_CONFIG gives this server no memory for one more kernel
NOTE = "Every preheated kernel of this dashboard is taken right now"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    running = start_hub(
        tmp_path_factory.mktemp("voila-pool-browser"),
        isolated=True,  # the open page frames the dashboard across origins
        extra_config=EXTRA_CONFIG,
        configure_kwargs={**RESOURCES, "max_warm_kernels": 4},
    )
    (running.root / "voila" / "slow.ipynb").write_text(json.dumps(SLOW_NOTEBOOK))
    for name in ("teacher", "b1", "b2", "b3", "b4"):
        running.ensure_user(name)
    yield running
    stop_hub(running)


def test_a_viewer_who_finds_the_pool_empty_reads_so_on_the_open_page(hub, browser) -> None:
    start_warm(hub, SLUG, "voila/slow.ipynb")
    wait_until(
        lambda: "pool" not in hub.svc("POST", f"dashboards/teacher/{SLUG}/open", "b4").json(),
        120,
        what="the first preheated kernel to have run the notebook",
    )
    context, page = log_in(hub, browser, "b4")
    found: dict[str, str] = {}

    def look() -> bool:
        """Open the dashboard's page once; True when it showed the note."""
        page.goto(f"{hub.service_url}open/teacher/{SLUG}")
        page.wait_for_selector("#pool-note, #dashboard-frame", state="attached")
        note = page.locator("#pool-note")
        if note.count():
            found["text"] = note.inner_text()
            return True
        return False

    with ThreadPoolExecutor(3) as pool:
        opens = [pool.submit(open_page, hub, v, SLUG, SLOW_TEXT) for v in ("b1", "b2", "b3")]
        deadline = time.monotonic() + 120
        while not look():  # each try is one open of the page: stop at the first note
            assert time.monotonic() < deadline, "the open page never said the pool was empty"
        for done in opens:
            done.result()
    assert found["text"].startswith(NOTE)
    assert re.search(r"about \d+ s, as the latest kernels took", found["text"])
    # the dashboard shows in the frame, and then the note is gone
    page.frame_locator("#dashboard-frame").get_by_text(SLOW_TEXT).wait_for(timeout=180_000)
    page.locator("#pool-note").wait_for(state="detached", timeout=60_000)
    context.close()
    assert hub.svc("DELETE", f"dashboards/teacher/{SLUG}", "teacher").status_code == 204
