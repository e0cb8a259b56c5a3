"""Keep-warm windows: the API field's checks, in_window() and one round of the loop."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub_viz.errors import SpecError
from hub_viz.service.keepwarm import (
    DAYS,
    RETRY_SECONDS,
    check_windows,
    in_window,
    keep_warm_once,
)
from hub_viz.service.store import Dashboard, Store

from .conftest import Notes

pytestmark = pytest.mark.unit

EVERY_DAY = list(DAYS)


# -- check_windows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, []),
        ([], []),
        (
            [{"start": "09:00", "end": "11:00"}],
            [{"days": EVERY_DAY, "start": "09:00", "end": "11:00"}],
        ),
        # days in week order, lower case, once each
        (
            [{"days": ["sun", "Mon", " wed ", "mon"], "start": "00:00", "end": "24:00"}],
            [{"days": ["mon", "wed", "sun"], "start": "00:00", "end": "24:00"}],
        ),
        (
            [{"days": None, "start": "23:59", "end": "24:00"}],
            [{"days": EVERY_DAY, "start": "23:59", "end": "24:00"}],
        ),
        (
            [{"start": "08:00", "end": "09:00"}] * 20,
            [{"days": EVERY_DAY, "start": "08:00", "end": "09:00"}] * 20,
        ),
    ],
)
def test_check_windows_accepts_and_normalises(value: Any, expected: list) -> None:
    assert check_windows(value) == expected


EXAMPLE = '{"days": ["mon", "wed"], "start": "09:00", "end": "11:00"}'
DAYS_MESSAGE = (
    "'days' in keep_warm window 1 must be a non-empty list of mon, tue, wed, thu, "
    "fri, sat, sun (or left out for every day)."
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"start": "09:00", "end": "10:00"},
            f"'keep_warm' must be \"always\" or a list of windows such as {EXAMPLE}.",
        ),
        ("09:00-10:00", f"'keep_warm' must be \"always\" or a list of windows such as {EXAMPLE}."),
        ([{"start": "09:00", "end": "10:00"}] * 21, "'keep_warm' may list at most 20 windows."),
        (["09:00-10:00"], f"Each keep_warm window must be an object such as {EXAMPLE}."),
        (
            [{"start": "09:00", "end": "10:00", "tz": "UTC"}],
            "Unknown key(s) ['tz'] in keep_warm window 1; allowed: days, start, end.",
        ),
        ([{"days": [], "start": "09:00", "end": "10:00"}], DAYS_MESSAGE),
        ([{"days": "mon", "start": "09:00", "end": "10:00"}], DAYS_MESSAGE),
        ([{"days": ["monday"], "start": "09:00", "end": "10:00"}], DAYS_MESSAGE),
        ([{"days": [1], "start": "09:00", "end": "10:00"}], DAYS_MESSAGE),
        (
            [{"end": "10:00"}],
            "'start' in keep_warm window 1 must be a time HH:MM from 00:00 to 23:59.",
        ),
        (
            [{"start": "9:00", "end": "10:00"}],
            "'start' in keep_warm window 1 must be a time HH:MM from 00:00 to 23:59.",
        ),
        (
            [{"start": "24:00", "end": "24:00"}],
            "'start' in keep_warm window 1 must be a time HH:MM from 00:00 to 23:59.",
        ),
        (
            [{"start": 900, "end": "10:00"}],
            "'start' in keep_warm window 1 must be a time HH:MM from 00:00 to 23:59.",
        ),
        (
            [{"start": "09:00", "end": "10:60"}],
            "'end' in keep_warm window 1 must be a time HH:MM from 00:01 to 24:00.",
        ),
        (
            [{"start": "09:00", "end": "25:00"}],
            "'end' in keep_warm window 1 must be a time HH:MM from 00:01 to 24:00.",
        ),
        (
            [{"start": "09:00"}],
            "'end' in keep_warm window 1 must be a time HH:MM from 00:01 to 24:00.",
        ),
        (
            [{"start": "09:00", "end": "10:00"}, {"start": "22:00", "end": "02:00"}],
            "'end' (02:00) in keep_warm window 2 must come after 'start' (22:00); "
            "split a window that crosses midnight in two.",
        ),
        (
            [{"start": "09:00", "end": "09:00"}],
            "'end' (09:00) in keep_warm window 1 must come after 'start' (09:00); "
            "split a window that crosses midnight in two.",
        ),
    ],
)
def test_check_windows_refuses_with_a_reason(value: Any, message: str) -> None:
    with pytest.raises(SpecError) as e:
        check_windows(value)
    assert e.value.message == message
    assert e.value.status_code == 400


# -- in_window ----------------------------------------------------------------------------

MONDAY = dt.datetime(2024, 3, 4)  # a Monday
LECTURE = [{"days": ["mon", "wed"], "start": "09:00", "end": "11:00"}]


def at(day_offset: int, hh: int, mm: int, ss: int = 0, us: int = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=day_offset, hours=hh, minutes=mm, seconds=ss, microseconds=us)


@pytest.mark.parametrize(
    ("windows", "now", "inside"),
    [
        ([], at(0, 10, 0), False),
        (LECTURE, at(0, 9, 0), True),  # the start is inside
        (LECTURE, at(0, 8, 59, 59, 999999), False),
        (LECTURE, at(0, 10, 59, 59, 999999), True),
        (LECTURE, at(0, 11, 0), False),  # the end is not
        (LECTURE, at(2, 10, 0), True),  # Wednesday
        (LECTURE, at(1, 10, 0), False),  # Tuesday
        (LECTURE, at(6, 10, 0), False),  # Sunday
        (LECTURE, at(7, 10, 0), True),  # next Monday
        # no days: every day; "24:00" reaches midnight
        ([{"start": "22:00", "end": "24:00"}], at(5, 23, 59, 59), True),
        ([{"start": "22:00", "end": "24:00"}], at(6, 0, 0), False),
        ([{"days": None, "start": "00:00", "end": "24:00"}], at(3, 0, 0), True),
        # a window split over midnight, Friday night into Saturday
        (
            [
                {"days": ["fri"], "start": "22:00", "end": "24:00"},
                {"days": ["sat"], "start": "00:00", "end": "02:00"},
            ],
            at(5, 1, 30),
            True,
        ),
        (
            [
                {"days": ["fri"], "start": "22:00", "end": "24:00"},
                {"days": ["sat"], "start": "00:00", "end": "02:00"},
            ],
            at(4, 1, 30),
            False,
        ),
        # any one window is enough
        (LECTURE + [{"days": ["tue"], "start": "14:00", "end": "15:00"}], at(1, 14, 30), True),
    ],
)
def test_in_window(windows: list, now: dt.datetime, inside: bool) -> None:
    assert in_window(windows, now) is inside


def test_in_window_reads_wall_clock_time_of_aware_datetimes() -> None:
    # 09:30 in UTC+2 is inside a 09:00-11:00 window whatever UTC says
    now = dt.datetime(2024, 3, 4, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert in_window(LECTURE, now)


# -- one round of the loop ------------------------------------------------------------------


class FakeHub:
    def __init__(self, servers: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.servers = servers
        self.calls = 0

    async def active_servers(self) -> dict[tuple[str, str], dict[str, Any]]:
        self.calls += 1
        return self.servers


def add(store: Store, slug: str, *, keep_warm: list, mode: str = "shared") -> None:
    with store.session() as db:
        db.add(
            Dashboard(
                owner="alice",
                slug=slug,
                title=slug,
                framework="dash",
                entry="app.py",
                mode=mode,
                keep_warm=keep_warm,
            )
        )
        db.commit()


async def test_keep_warm_once_notes_running_shared_dashboards_inside_a_window(store) -> None:
    add(store, "lecture", keep_warm=LECTURE)
    add(store, "evening", keep_warm=[{"start": "18:00", "end": "20:00"}])
    add(store, "plain", keep_warm=[])
    add(store, "stopped", keep_warm=LECTURE)
    add(store, "starting", keep_warm=LECTURE)
    add(store, "mine", keep_warm=LECTURE, mode="per-viewer")  # stored before the rule
    hub = FakeHub(
        {
            ("alice", "lecture"): {"ready": True, "last_activity": "2024-03-04T08:00:00Z"},
            ("alice", "evening"): {"ready": True},
            ("alice", "plain"): {"ready": True},
            ("alice", "starting"): {"ready": False, "pending": "spawn"},
            ("bob", "mine-1234abcd"): {"ready": True},
        }
    )
    notes = Notes()
    kept = await keep_warm_once(store, hub, notes, now=at(0, 10, 0))
    assert kept == notes.notes == [("alice", "lecture")]
    # outside every window: nothing is noted and the hub is not even asked
    calls = hub.calls
    assert await keep_warm_once(store, hub, notes, now=at(1, 10, 0)) == []
    assert hub.calls == calls
    assert await keep_warm_once(store, hub, notes, now=at(1, 19, 0)) == [("alice", "evening")]


class Starter:
    def __init__(self, fail: set[str] = frozenset()) -> None:
        self.started: list[str] = []
        self.fail = fail

    async def ensure_running(self, d: Dashboard, viewer: str | None) -> None:
        assert viewer is None  # a warm start is nobody's open
        self.started.append(d.slug)
        if d.slug in self.fail:
            raise RuntimeError("the app does not start")


async def test_keep_warm_starts_stopped_dashboards_inside_a_window_and_retries_later(
    store,
) -> None:
    add(store, "lecture", keep_warm=LECTURE)
    add(store, "broken", keep_warm=LECTURE)
    add(store, "starting", keep_warm=LECTURE)
    add(store, "evening", keep_warm=[{"start": "18:00", "end": "20:00"}])
    hub = FakeHub({("alice", "starting"): {"ready": False, "pending": "spawn"}})
    notes, starter, attempts = Notes(), Starter(fail={"broken"}), {}
    kept = await keep_warm_once(
        store, hub, notes, now=at(0, 10, 0), starter=starter, attempts=attempts, clock=1000.0
    )
    # started once each; the pending one is left to finish, the evening one is out of window
    assert sorted(starter.started) == ["broken", "lecture"]
    assert kept == [("alice", "lecture")]
    assert notes.notes == []
    # a minute later the failed start is not tried again, nor the other (the hub has no news)
    await keep_warm_once(
        store, hub, notes, now=at(0, 10, 1), starter=starter, attempts=attempts, clock=1060.0
    )
    assert sorted(starter.started) == ["broken", "lecture"]
    # after RETRY_SECONDS both are tried again
    await keep_warm_once(
        store,
        hub,
        notes,
        now=at(0, 10, 11),
        starter=starter,
        attempts=attempts,
        clock=1000.0 + RETRY_SECONDS,
    )
    assert sorted(starter.started) == ["broken", "broken", "lecture", "lecture"]


def test_always_is_one_window_over_every_day() -> None:
    windows = check_windows("always")
    assert windows == [{"days": list(DAYS), "start": "00:00", "end": "24:00"}]
    assert all(in_window(windows, at(day, hour, 0)) for day in range(7) for hour in (0, 12, 23))
    with pytest.raises(SpecError, match='"always" or a list of windows'):
        check_windows("sometimes")
