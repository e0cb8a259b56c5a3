"""Headless Debian Chromium for the browser tests (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

import pytest

from hub_viz.service.thumbnails import CHROMIUM_ARGS

CHROMIUM = os.environ.get("HUB_VIZ_CHROMIUM", "/usr/bin/chromium")

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run installs it")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def logged_in_page(
    browser,
    hub_url: str,
    name: str,
    password: str,
    *,
    init_script: str | None = None,
    **context_options,
):
    """A new browser context with a desktop User-Agent (and ``context_options``, e.g.
    ``ignore_https_errors``), logged in to the hub as ``name`` through its login form;
    ``(context, page)`` with the page on the hub's home page. ``init_script`` runs in
    every page before the page's own scripts."""
    from ..conftest import BROWSER_UA

    context = browser.new_context(user_agent=BROWSER_UA, **context_options)
    context.set_default_timeout(60_000)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(f"{hub_url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url("**/hub/home")
    return context, page
