"""Screenshots of running dashboards for the gallery cards (headless Chromium).

Used only when Playwright is installed and a system ``chromium`` exists. The
browser visits the dashboard through the proxy with a one-time grant for its
author, on an instance of its own where the framework keeps some for viewers
(``capture_query``: Voilà's page then starts its own kernel instead of taking a
preheated one), waits until the framework's ``rendered_check`` holds and keeps a
640x360 PNG of an 800x450 window. A page that does not render in time leaves
the card as it was: a loading screen is never stored.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

from ..errors import FrameworkError
from ..frameworks import Framework
from .store import Dashboard, utcnow
from .thumbnails import CHROMIUM_ARGS, NOT_RENDERED, SKIPPED, TAKEN, scrub

log = logging.getLogger("hub_viz.service")
# After the page rendered: time for widgets, plots and fonts to paint.
SETTLE_MS = 1500
# After leaving the page: time for its unload requests to be answered.
UNLOAD_MS = 2500


def capture_path(framework: Framework, entry: str) -> str:
    """The page below the prefix the capture asks for ("" for the launcher's default)."""
    if not framework.capture_query:
        return ""
    stem = entry.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0] if entry else ""
    try:
        page = framework.format_path(framework.page_path, {"entry": entry, "app_name": stem})
    except FrameworkError:
        page = ""
    return f"{page}?{framework.capture_query}"


def make_capture(ctx: Any, chromium: str, ready_timeout: float = 120) -> Any:
    """An async ``capture(dashboard_id)`` returning TAKEN, NOT_RENDERED or SKIPPED,
    or None when screenshots cannot be taken."""
    if not chromium:
        return None
    try:
        from playwright.async_api import Error as PlaywrightError
        from playwright.async_api import async_playwright
    except ImportError:
        return None

    async def capture(dashboard_id: int) -> str:
        with ctx.store.session() as db:
            d = db.get(Dashboard, dashboard_id)
            if d is None or d.mode != "shared":
                return SKIPPED
            owner, slug, entry = d.owner, d.slug, d.entry
            framework = ctx.policy.frameworks.get(d.framework)
        if framework is None:
            return SKIPPED
        state = await ctx.deployer.state(owner, slug)
        if not state.ready:
            return SKIPPED
        url = ctx.deployer.enter_url(owner, slug, owner, page=True)
        path = capture_path(framework, entry)
        if path:
            url += "&next=" + quote(path, safe="")
        if not ctx.deployer.layout.isolated:  # a path: through the proxy
            url = ctx.proxy_url.rstrip("/") + url
        check = framework.rendered_check
        png = b""
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                # a laptop-sized window (wider than Bootstrap's md breakpoint), so
                # the app's content is big enough to recognise on a card
                page = await browser.new_page(
                    viewport={"width": 800, "height": 450}, device_scale_factor=0.8
                )
                deadline = time.monotonic() + ready_timeout
                try:
                    await page.goto(url, wait_until="load", timeout=ready_timeout * 1000)
                    left = max(deadline - time.monotonic(), 0.001)
                    await page.wait_for_function(check, timeout=left * 1000, polling=250)
                    await page.wait_for_timeout(SETTLE_MS)
                    if await page.evaluate(check):  # still rendered (not reloading)
                        png = await page.screenshot(type="png")
                except PlaywrightError as e:  # a time-out, or the page went away
                    log.info("Card of %s/%s: %s", owner, slug, scrub(e))
                # The page's unload handlers free what it holds (Voilà: its kernel, with
                # a beacon the browser sends on its own: time for it to be answered).
                await page.goto("about:blank", timeout=10000)
                await page.wait_for_timeout(UNLOAD_MS)
            finally:
                await browser.close()
        if not png:
            log.warning(
                "Card of %s/%s not taken: its page did not render within %d s "
                "(%s check); the card stays as it was.",
                owner,
                slug,
                ready_timeout,
                framework.name,
            )
            return NOT_RENDERED
        with ctx.store.session() as db:
            d = db.get(Dashboard, dashboard_id)
            if d is not None:
                d.thumbnail = png
                d.thumbnail_updated = utcnow()
                db.commit()
        log.info(
            "Took a card of %s/%s once its page rendered (%s check, %d bytes)",
            owner,
            slug,
            framework.name,
            len(png),
        )
        return TAKEN

    return capture
