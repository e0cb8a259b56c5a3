"""The manage page's versions: preview one in a tab, make it current, roll back in one click.

A real hub and real Dash apps in headless Chromium; what viewers get is
checked through the open flow after each click.
"""

from __future__ import annotations

import pytest

from ..conftest import PASSWORD, SERVICE, Hub, start_hub, stop_hub
from ..hub.test_versions import APP, open_as, title
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR, VIEWER = "page-author", "page-viewer"
REF = f"{AUTHOR}/ver-page"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    running = start_hub(
        tmp_path_factory.mktemp("versions-page-hub"), configure_kwargs={"publishers": [AUTHOR]}
    )
    for name in (AUTHOR, VIEWER):
        running.ensure_user(name)
    yield running
    stop_hub(running)


def test_preview_make_current_and_roll_back_from_the_manage_page(hub: Hub, browser) -> None:
    folder = hub.root / "ver-page"
    folder.mkdir()
    (folder / "app.py").write_text(APP.format(tag="p1"))
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": "ver-page",
            "title": "Page",
            "entry": "ver-page/app.py",
            "framework": "dash",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    context, page = logged_in_page(browser, hub.url, AUTHOR, PASSWORD)
    try:
        assert title(hub, open_as(hub, REF, VIEWER)) == "Versions p1"
        (folder / "app.py").write_text(APP.format(tag="p2"))
        page.goto(f"{hub.url}{SERVICE}d/{REF}")
        page.uncheck("#version-new-current")
        page.click("#version-new")
        row2 = page.locator('#versions tr[data-version="2"]')
        page.wait_for_function(  # said once the table shows it
            "document.getElementById('action-message').textContent.includes("
            "'Version 2 is ready to preview.')"
        )
        assert "(current)" in page.locator('#versions tr[data-version="1"]').inner_text()

        with context.expect_page() as opened:
            row2.get_by_role("button", name="Preview").click()
        tab = opened.value
        tab.wait_for_function("document.title === 'Versions p2'", timeout=120_000)
        assert "/ver-page-v2-" in tab.url  # the preview's own server, not the open page
        tab.close()
        assert title(hub, open_as(hub, REF, VIEWER)) == "Versions p1"  # viewers: still 1

        row2.get_by_role("button", name="Make current").click()
        page.wait_for_function(
            "document.getElementById('action-message').textContent.includes("
            "'Version 2 is current')",
            timeout=120_000,
        )
        assert "(current)" in row2.inner_text()
        assert title(hub, open_as(hub, REF, VIEWER)) == "Versions p2"

        page.locator('#versions tr[data-version="1"]').get_by_role(
            "button", name="Roll back to this"
        ).click()
        page.wait_for_function(
            "document.getElementById('action-message').textContent.includes("
            "'Version 1 is current')",
            timeout=120_000,
        )
        assert title(hub, open_as(hub, REF, VIEWER)) == "Versions p1"
    finally:
        context.close()
        assert hub.svc("DELETE", f"dashboards/{REF}", AUTHOR).status_code == 204
