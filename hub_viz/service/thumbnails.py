"""Card images: a screenshot of the running dashboard, or a framework placeholder.

Screenshots are taken in headless Chromium (Playwright driving the system's
``chromium``) when both are available, through the proxy with a one-time open
grant for the author, once a viewer's page of the dashboard has rendered
(see :mod:`hub_viz.service.capture`). Without them, cards show a placeholder
drawn from the framework's name.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import shutil
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("hub_viz.service")

COLOURS = {
    "voila": "#f37626",
    "dash": "#3c4ee0",
    "bokeh": "#e2a41c",
    "panel": "#0072b5",
    "streamlit": "#ff4b4b",
    "notebook": "#616161",
    "gradio": "#f97316",
    "shiny": "#1d6fb8",
    "marimo": "#0d9488",
    "solara": "#eab308",
    "nicegui": "#5898d4",
}
# What a capture came to: a card stored, a page that did not render, nothing to capture.
TAKEN, NOT_RENDERED, SKIPPED = "taken", "not rendered", "skipped"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def placeholder_svg(framework: str, frameworks: Mapping[str, Any]) -> str:
    record = frameworks.get(framework)
    label = html.escape(record.display_name if record else framework or "Dashboard")
    colour = COLOURS.get(framework, "#6b7280")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180" role="img" '
        f'aria-label="{label} dashboard"><rect width="320" height="180" fill="{colour}" '
        'opacity="0.15"/><rect x="24" y="110" width="30" height="46" fill="' + colour + '"/>'
        f'<rect x="64" y="84" width="30" height="72" fill="{colour}" opacity="0.8"/>'
        f'<rect x="104" y="60" width="30" height="96" fill="{colour}" opacity="0.6"/>'
        f'<text x="296" y="40" font-family="sans-serif" font-size="24" text-anchor="end" '
        f'fill="{colour}">{label}</text></svg>'
    )


def find_chromium(path: str = "") -> str:
    return path or shutil.which("chromium") or shutil.which("chromium-browser") or ""


class Thumbnailer:
    """Captures card images in the background, one at a time.

    A capture is asked for when a viewer's page of the dashboard has rendered
    (the open page says so), never while the first viewer's page is loading.
    After a capture that found the page not rendered, the card stays as it was
    and no other capture of that dashboard (as it was then: an update may try
    again at once) starts for ``retry_seconds``.
    """

    def __init__(
        self, capture: Any = None, enabled: bool = True, retry_seconds: float = 300
    ) -> None:
        self.capture = capture  # async (dashboard_id) -> TAKEN | NOT_RENDERED | SKIPPED
        self.enabled = enabled and capture is not None
        self.retry_seconds = retry_seconds
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._pending: set[int] = set()
        # (dashboard id, its last update) -> no capture before this monotonic time
        self._not_before: dict[tuple[int, Any], float] = {}

    def wanted(self, dashboard: Any) -> bool:
        """Would a capture of ``dashboard`` (shared, its card older than its spec) start now?"""
        stale = (
            dashboard.thumbnail_updated is None or dashboard.thumbnail_updated < dashboard.updated
        )
        return (
            self.enabled
            and dashboard.mode == "shared"
            and stale
            and dashboard.id not in self._pending
            and time.monotonic() >= self._not_before.get(_key(dashboard), 0)
        )

    def schedule_if_needed(self, dashboard: Any, state: Any) -> None:
        """Queue a screenshot of a ready shared dashboard that has none newer than its spec."""
        if state.ready and self.wanted(dashboard):
            self.schedule(dashboard)

    def schedule(self, dashboard: Any) -> None:
        if self.enabled and dashboard.id not in self._pending:
            self._pending.add(dashboard.id)
            self._queue.put_nowait(_key(dashboard))
            if self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while not self._queue.empty():
            key = await self._queue.get()
            dashboard_id = key[0]
            outcome = NOT_RENDERED  # also when the capture failed
            try:
                outcome = await self.capture(dashboard_id)
            except Exception as e:  # a thumbnail is never worth failing for
                log.warning("Thumbnail of dashboard %s failed: %s", dashboard_id, scrub(e))
            finally:
                now = time.monotonic()
                self._not_before = {k: t for k, t in self._not_before.items() if t > now}
                if outcome == NOT_RENDERED:
                    self._not_before[key] = now + self.retry_seconds
                self._pending.discard(dashboard_id)


_GRANT = re.compile(r"(grant_token=)[^&\s\"']+")


def scrub(error: BaseException) -> str:
    """An error's first line for the log, without the one-time grant of a URL in it."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return _GRANT.sub(r"\1[secret]", lines[0])


def _key(dashboard: Any) -> tuple[int, Any]:
    """A dashboard as published now (ids of removed dashboards may come back)."""
    return dashboard.id, dashboard.updated
