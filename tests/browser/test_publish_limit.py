"""The publish form on a path-based hub: a user who is no publisher is offered 'private' only.

The test hub serves dashboards on its own origin and names its publishers
(``tests/conftest.py``); this student is not one of them.
"""

from __future__ import annotations

import pytest

from hub_viz.service.publishers import LIMIT

from ..conftest import SERVICE
from .test_publish import log_in

pytestmark = pytest.mark.browser

STUDENT, SLUG = "limit-student", "limit-notes"


def test_the_form_shows_the_limit_and_publishes_private(path_hub, browser):
    hub = path_hub
    hub.ensure_user(STUDENT)
    context, page = log_in(hub, browser, STUDENT)
    try:
        page.locator("#hub-viz-gallery #hub-viz-publish").click()
        page.wait_for_url(f"**{SERVICE}publish")
        page.locator("#framework option[value=dash]").wait_for(state="attached")  # choices loaded
        options = page.locator("#visibility option").evaluate_all("os => os.map(o => o.value)")
        assert options == ["private"]
        assert page.locator("#publish-limit").inner_text() == LIMIT
        assert page.locator("#visibility").get_attribute("aria-describedby") == "publish-limit"
        page.fill("#title", "Limit notes")
        page.fill("#slug", SLUG)
        page.fill("#entry", "dash/app.py")
        page.click("#publish-submit")
        page.wait_for_url(f"**{SERVICE}d/{STUDENT}/{SLUG}")
        assert page.locator("#visibility").inner_text() == "private"
        # the edit form keeps to what may be saved, with the same note
        page.goto(f"{hub.url}{SERVICE}d/{STUDENT}/{SLUG}/edit")
        assert page.locator("#visibility").input_value() == "private"
        assert page.locator("#publish-limit").inner_text() == LIMIT
    finally:
        context.close()
        hub.svc("DELETE", f"dashboards/{STUDENT}/{SLUG}", STUDENT)
