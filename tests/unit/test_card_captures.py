"""When card screenshots are taken: the queue, its back-off after a page that did not
render, and where the capture's browser goes (the real capture runs in
tests/browser/test_cards.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass, field

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.service.capture import capture_path
from hub_viz.service.thumbnails import NOT_RENDERED, TAKEN, Thumbnailer

T0 = dt.datetime(2026, 1, 1, 12, 0)


@dataclass
class Card:
    id: int = 1
    mode: str = "shared"
    updated: dt.datetime = T0
    thumbnail_updated: dt.datetime | None = None


@dataclass
class Ready:
    ready: bool = True


@dataclass
class Captures:
    """A capture that answers with the given outcomes, in turn, and counts its calls."""

    outcomes: list = field(default_factory=list)
    calls: list = field(default_factory=list)

    async def __call__(self, dashboard_id: int) -> str:
        self.calls.append(dashboard_id)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def settle(thumbnails: Thumbnailer) -> None:
    for _ in range(50):
        if not thumbnails._pending:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the capture queue did not empty")


async def test_a_page_that_did_not_render_is_tried_again_only_after_the_retry_interval():
    captures = Captures([NOT_RENDERED, TAKEN])
    thumbnails = Thumbnailer(captures, retry_seconds=0.3)
    d = Card()
    thumbnails.schedule_if_needed(d, Ready())
    await settle(thumbnails)
    assert captures.calls == [1]
    assert not thumbnails.wanted(d)  # within the interval: no new capture
    thumbnails.schedule_if_needed(d, Ready())
    await settle(thumbnails)
    assert captures.calls == [1]
    await asyncio.sleep(0.35)
    assert thumbnails.wanted(d)
    thumbnails.schedule_if_needed(d, Ready())
    await settle(thumbnails)
    assert captures.calls == [1, 1]


async def test_an_update_or_a_new_dashboard_with_the_same_id_may_be_captured_at_once():
    captures = Captures([NOT_RENDERED])
    thumbnails = Thumbnailer(captures, retry_seconds=3600)
    thumbnails.schedule_if_needed(Card(), Ready())
    await settle(thumbnails)
    assert not thumbnails.wanted(Card())
    assert thumbnails.wanted(Card(updated=T0 + dt.timedelta(seconds=1)))


async def test_a_failed_capture_backs_off_too_and_a_taken_card_needs_no_other(caplog):
    grant = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    captures = Captures(
        [
            RuntimeError(
                "Page.goto: net::ERR_CONNECTION_REFUSED at "
                f"http://127.0.0.1:8000/user/alice/sales/_hub_viz/enter?grant_token={grant}&next=x\n"
                "Call log:\n  - navigating"
            )
        ]
    )
    thumbnails = Thumbnailer(captures, retry_seconds=3600)
    thumbnails.schedule_if_needed(Card(), Ready())
    await settle(thumbnails)
    assert captures.calls == [1] and not thumbnails.wanted(Card())
    assert "grant_token=[secret]&next=x" in caplog.text  # why, without the grant
    assert grant not in caplog.text and "Call log" not in caplog.text
    fresh = Card(id=2, thumbnail_updated=T0 + dt.timedelta(seconds=5))
    assert not thumbnails.wanted(fresh)  # its card is newer than its spec


async def test_no_capture_of_a_stopped_or_per_viewer_dashboard():
    captures = Captures([])
    thumbnails = Thumbnailer(captures)
    thumbnails.schedule_if_needed(Card(), Ready(False))
    thumbnails.schedule_if_needed(Card(mode="per-viewer"), Ready())
    await asyncio.sleep(0.05)
    assert captures.calls == []
    assert not Thumbnailer(None).wanted(Card())  # no browser: no captures at all


def test_voila_captures_ask_for_a_kernel_of_their_own():
    voila = BUILTIN_FRAMEWORKS["voila"]
    assert capture_path(voila, "report/dashboard.ipynb") == "?template=hub-viz-card"
    # frameworks that keep nothing for viewers: the launcher's own page, as viewers get it
    assert capture_path(BUILTIN_FRAMEWORKS["bokeh"], "app.py") == ""


def test_every_framework_declares_a_rendered_check():
    for framework in BUILTIN_FRAMEWORKS.values():
        assert framework.rendered_check.strip(), framework.name


def test_launchers_never_get_the_card_fields():
    """A launcher of another hub_viz version builds its record from the spawner's JSON:
    fields only the service reads stay out of it."""
    from hub_viz.spawner import framework_json

    record = json.loads(framework_json(BUILTIN_FRAMEWORKS["voila"]))
    assert "rendered_check" not in record and "capture_query" not in record
    assert record["warm_kernel_flags"]  # the rest is there


def test_a_launcher_rebuilds_the_record_without_them(monkeypatch):
    from hub_viz.launcher.app import framework_from_env
    from hub_viz.spawner import framework_json

    monkeypatch.setenv("HUB_VIZ_FRAMEWORK", framework_json(BUILTIN_FRAMEWORKS["voila"]))
    assert framework_from_env().command == BUILTIN_FRAMEWORKS["voila"].command
