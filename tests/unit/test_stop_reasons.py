"""Why a deployment ended: crashed (the hub's spawner says so), culled idle, stopped on
the hub, or stopped while nobody watched.

``vanished_reason`` is pure; ``Deployer.reconcile``, ``server_ended`` and
``_record_start`` are driven against a fake hub listing and a real (SQLite) store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub_viz.layout import Layout
from hub_viz.service.deploy import (
    CRASHED,
    CULLED,
    EXITED,
    FAILED_START,
    STOPPED,
    STOPPED_ON_HUB,
    Deployer,
    parse_time,
    vanished_reason,
)
from hub_viz.service.store import Dashboard, Deployment, Store

pytestmark = pytest.mark.unit

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


@pytest.mark.parametrize(
    ("last", "now", "timeout", "reason"),
    [
        (None, T0, 1800, STOPPED),  # never seen running: say no more than "stopped"
        (T0, T0 + minutes(31), 1800, CULLED),
        (T0, T0 + minutes(30), 1800, CULLED),
        # clocks may disagree a little: a tenth of the timeout, at most a minute
        (T0, T0 + minutes(29.1), 1800, CULLED),
        # in use too recently for the culler: someone stopped it on the hub (a crash is
        # reported by the hub's spawner, never guessed from activity)
        (T0, T0 + minutes(28.9), 1800, STOPPED_ON_HUB),
        (T0, T0 + dt.timedelta(seconds=18), 20, CULLED),
        (T0, T0 + dt.timedelta(seconds=17), 20, STOPPED_ON_HUB),
        (T0, T0 + minutes(2), 1800, STOPPED_ON_HUB),
        (T0, T0, 1800, STOPPED_ON_HUB),
        (T0, T0 + minutes(600), 0, STOPPED_ON_HUB),  # no culler: it was not culled
    ],
)
def test_vanished_reason(
    last: dt.datetime | None, now: dt.datetime, timeout: float, reason: str
) -> None:
    assert vanished_reason(last, now, timeout) == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03-04T12:00:00Z", T0),
        ("2024-03-04T12:00:00.000000Z", T0),
        ("2024-03-04T14:00:00+02:00", T0),
        ("2024-03-04T12:00:00", T0),  # naive: the hub's UTC
        (None, None),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_time(value: Any, expected: dt.datetime | None) -> None:
    assert parse_time(value) == expected


# -- reconcile against a fake hub ------------------------------------------------------------


class FakeHub:
    def __init__(self) -> None:
        self.servers: dict[tuple[str, str], dict[str, Any]] = {}

    async def active_servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        return dict(self.servers)

    def run(self, owner: str, name: str, last_activity: dt.datetime) -> None:
        self.servers[(owner, name)] = {
            "ready": True,
            "last_activity": last_activity.isoformat().replace("+00:00", "Z"),
        }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'reasons.sqlite'}")
    yield s
    s.close()


def deployer(store: Store, hub: FakeHub, timeout: float = 1800) -> Deployer:
    return Deployer(
        hub, store, None, layout=Layout(), service_prefix="/services/hub-viz/", cull_timeout=timeout
    )  # type: ignore[arg-type]


def started(store: Store, *names: str) -> None:
    with store.session() as db:
        d = Dashboard(owner="alice", slug="sales", title="Sales", framework="dash", entry="app.py")
        db.add(d)
        db.flush()
        for name in names:
            db.add(
                Deployment(
                    dashboard_id=d.id,
                    dashboard_ref=d.ref,
                    server_owner="alice",
                    server_name=name,
                    started=(T0 - minutes(90)).replace(tzinfo=None),
                )
            )
        db.commit()


def reasons(store: Store) -> dict[str, str | None]:
    with store.session() as db:
        rows = db.scalars(select(Deployment)).all()
        return {r.server_name: (r.stop_reason if r.stopped else None) for r in rows}


async def test_reconcile_tells_culled_from_stopped_by_the_last_activity_seen(store) -> None:
    hub = FakeHub()
    started(store, "idle", "busy", "unseen", "running")
    d = deployer(store, hub)
    # round 1: the service sees three of them run; "unseen" has already gone
    hub.run("alice", "idle", T0 - minutes(20))
    hub.run("alice", "busy", T0 - minutes(1))
    hub.run("alice", "running", T0 - minutes(40))
    assert await d.reconcile(now=T0) == 1
    assert reasons(store) == {"idle": None, "busy": None, "unseen": STOPPED, "running": None}
    # round 2, 12 minutes on: "idle" was culled, "busy" was stopped on the hub (nobody
    # reported a crash), "running" still runs
    del hub.servers[("alice", "idle")], hub.servers[("alice", "busy")]
    assert await d.reconcile(now=T0 + minutes(12)) == 2
    assert reasons(store) == {
        "idle": CULLED,
        "busy": STOPPED_ON_HUB,
        "unseen": STOPPED,
        "running": None,
    }
    # newer activity from the hub replaces what was remembered
    hub.run("alice", "running", T0 + minutes(11))
    await d.reconcile(now=T0 + minutes(13))
    del hub.servers[("alice", "running")]
    await d.reconcile(now=T0 + minutes(14))
    assert reasons(store)["running"] == STOPPED_ON_HUB


async def test_reconcile_without_a_culler_never_says_culled(store) -> None:
    hub = FakeHub()
    started(store, "old")
    d = deployer(store, hub, timeout=0)
    hub.run("alice", "old", T0 - minutes(600))
    await d.reconcile(now=T0)
    hub.servers.clear()
    await d.reconcile(now=T0 + minutes(1))
    assert reasons(store) == {"old": STOPPED_ON_HUB}


async def test_a_start_closes_the_previous_run_with_its_reason(store) -> None:
    """A viewer reopens a culled dashboard before the next reconcile notices it stopped."""
    hub = FakeHub()
    started(store, "sales")
    d = deployer(store, hub, timeout=60)
    hub.run("alice", "sales", dt.datetime.now(UTC) - minutes(5))
    await d.reconcile()
    hub.servers.clear()  # culled
    with store.session() as db:
        dashboard = db.scalar(select(Dashboard))
    d._record_start(dashboard, "alice", "sales", "bob")
    with store.session() as db:
        rows = db.scalars(select(Deployment).order_by(Deployment.id)).all()
    assert [(r.stop_reason, r.stopped is not None, r.started_by) for r in rows] == [
        (CULLED, True, ""),
        ("", False, "bob"),
    ]
    # the new run counts as active from its start, but it never got ready: failed to start
    await d.reconcile()
    with store.session() as db:
        rows = db.scalars(select(Deployment).order_by(Deployment.id)).all()
    assert rows[1].stop_reason == FAILED_START


async def test_a_crash_reported_under_use_is_recorded_as_crashed_not_culled(store) -> None:
    """The app dies under its viewers; the hub's spawner reports the exit at once. Even
    with the last activity the service saw long ago (stale by its reconcile interval and
    the launcher's activity interval), the run says "crashed", not "culled idle"."""
    hub = FakeHub()
    started(store, "sales")
    d = deployer(store, hub, timeout=60)
    hub.run("alice", "sales", dt.datetime.now(UTC) - minutes(5))  # looks idle to the service
    await d.reconcile()
    assert d.server_ended("alice", "sales", 1) == 1
    hub.servers.clear()
    await d.reconcile()
    with store.session() as db:
        dashboard = db.scalar(select(Dashboard))
    d._record_start(dashboard, "alice", "sales", "bob")  # reopened at once: nothing to guess
    with store.session() as db:
        rows = db.scalars(select(Deployment).order_by(Deployment.id)).all()
    assert [(r.stop_reason, r.stopped is not None) for r in rows] == [(CRASHED, True), ("", False)]
    # a report for a server with no open run changes nothing; a clean exit says so
    assert d.server_ended("alice", "other", 1) == 0
    hub.run("alice", "sales", dt.datetime.now(UTC))
    await d.reconcile()
    d.server_ended("alice", "sales", 0)
    with store.session() as db:
        assert db.get(Deployment, rows[1].id).stop_reason == EXITED


async def test_a_crash_before_the_run_was_seen_ready_failed_to_start(store) -> None:
    hub = FakeHub()
    started(store, "sales")
    d = deployer(store, hub)
    d.server_ended("alice", "sales", 1)
    assert reasons(store) == {"sales": FAILED_START}
