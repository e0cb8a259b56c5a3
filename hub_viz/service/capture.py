"""Screenshots of running dashboards for the gallery cards (headless Chromium).

Used only when Playwright is installed and a system ``chromium`` exists; the
browser visits the dashboard through the proxy with a one-time grant for its
author, waits for the page to settle and keeps a 640x360 PNG of an 800x450 window.
"""

from __future__ import annotations

import logging
from typing import Any

from .store import Dashboard, utcnow
from .thumbnails import CHROMIUM_ARGS

log = logging.getLogger("hub_viz.service")
SETTLE_MS = 2500


def make_capture(ctx: Any, chromium: str) -> Any:
    """An async ``capture(dashboard_id)``, or None when screenshots cannot be taken."""
    if not chromium:
        return None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        return None

    async def capture(dashboard_id: int) -> None:
        with ctx.store.session() as db:
            d = db.get(Dashboard, dashboard_id)
            if d is None or d.mode != "shared":
                return
            owner, slug = d.owner, d.slug
        state = await ctx.deployer.state(owner, slug)
        if not state.ready:
            return
        url = ctx.deployer.enter_url(owner, slug, owner)
        if not ctx.deployer.layout.isolated:  # a path: through the proxy
            url = ctx.proxy_url.rstrip("/") + url
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                # a laptop-sized window (wider than Bootstrap's md breakpoint), so
                # the app's content is big enough to recognise on a card
                page = await browser.new_page(
                    viewport={"width": 800, "height": 450}, device_scale_factor=0.8
                )
                await page.goto(url, wait_until="load", timeout=30000)
                await page.wait_for_timeout(SETTLE_MS)
                png = await page.screenshot(type="png")
            finally:
                await browser.close()
        with ctx.store.session() as db:
            d = db.get(Dashboard, dashboard_id)
            if d is not None:
                d.thumbnail = png
                d.thumbnail_updated = utcnow()
                db.commit()
        log.info("Took a thumbnail of %s/%s (%d bytes)", owner, slug, len(png))

    return capture
