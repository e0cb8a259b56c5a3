"""Usage figures: interval arithmetic, per-day rows, usage_for on a real SQLite store, the chart."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_viz.service.store import Dashboard, Deployment, Open, Store
from hub_viz.service.usage import chart_svg, clip, per_day, summarize, union_seconds, usage_for

pytestmark = pytest.mark.unit


def t(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    """A naive UTC time in March 2024 (the store keeps naive UTC)."""
    return dt.datetime(2024, 3, day, hour, minute)


H = 3600.0


# -- clip ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (t(5), t(6), (t(5), t(6))),  # inside
        (t(1), t(6), (t(4), t(6))),  # starts before the window
        (t(5), t(9), (t(5), t(8))),  # ends after the window
        (t(1), t(9), (t(4), t(8))),  # covers the window
        (t(1), t(3), None),  # before
        (t(9), t(10), None),  # after
        (t(1), t(4), None),  # ends where the window starts: nothing inside
        (t(8), t(9), None),  # starts where the window ends
        (t(5), t(5), None),  # empty
        (t(6), t(5), None),  # reversed
    ],
)
def test_clip(start, end, expected):
    assert clip(start, end, t(4), t(8)) == expected


# -- union_seconds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intervals", "hours"),
    [
        ([], 0),
        ([(t(1, 0), t(1, 2))], 2),
        ([(t(1, 0), t(1, 2)), (t(1, 3), t(1, 4))], 3),  # disjoint
        ([(t(1, 0), t(1, 2)), (t(1, 1), t(1, 4))], 4),  # overlapping
        ([(t(1, 0), t(1, 6)), (t(1, 1), t(1, 2))], 6),  # nested
        ([(t(1, 0), t(1, 2)), (t(1, 2), t(1, 3))], 3),  # touching
        ([(t(1, 5), t(1, 6)), (t(1, 0), t(1, 1)), (t(1, 0, 30), t(1, 2))], 3),  # unsorted
        ([(t(1, 0), t(1, 2))] * 3, 2),  # the same run three times
        ([(t(1, 0), t(1, 2)), (t(1, 1), t(1, 3)), (t(1, 2, 30), t(1, 5)), (t(1, 8), t(1, 9))], 6),
    ],
)
def test_union_seconds(intervals, hours):
    assert union_seconds(intervals) == hours * H


def test_union_seconds_accepts_a_generator():
    assert union_seconds((s, s + dt.timedelta(minutes=10)) for s in (t(1), t(2))) == 1200


# -- summarize ----------------------------------------------------------------------


def test_summarize_without_runs():
    assert summarize([], (t(1), t(2)), 0) == {
        "deployments": 0,
        "instance_hours": 0.0,
        "running_share": 0.0,
        "mean_deployment_minutes": 0.0,
    }


def test_summarize_overlapping_runs():
    window = (t(1), t(3))  # 48 h
    runs = [(t(1, 0), t(1, 6)), (t(1, 3), t(1, 9)), (t(2, 12), t(2, 13, 30))]
    assert summarize(runs, window, 2) == {
        "deployments": 2,
        "instance_hours": 13.5,  # 6 + 6 + 1.5: per-instance hours add up
        "running_share": round(10.5 / 48, 4),  # 9 h + 1.5 h with something running
        "mean_deployment_minutes": 270.0,  # 13.5 h / 3 runs
    }


def test_summarize_rounding_and_a_fully_busy_window():
    window = (t(1), t(2))
    runs = [(t(1), t(1, 0, 20)), (t(1), t(2))]
    figures = summarize(runs, window, 1)
    assert figures["running_share"] == 1.0
    assert figures["instance_hours"] == round((24 * 60 + 20) / 60, 3) == 24.333
    assert figures["mean_deployment_minutes"] == 730.0


def test_summarize_empty_window_has_no_share():
    assert summarize([], (t(1), t(1)), 0)["running_share"] == 0.0


# -- per_day ------------------------------------------------------------------------


def test_per_day_splits_runs_at_midnight_and_counts_distinct_viewers():
    window = (t(1, 12), t(3, 6))
    runs = [(t(1, 22), t(2, 2)), (t(2, 10), t(2, 11)), (t(2, 10, 30), t(3, 6))]
    opens = [
        (t(1, 12), "alice"),
        (t(1, 23), "alice"),
        (t(2, 0), "bob"),
        (t(2, 9), ""),
        (t(2, 23, 59), None),  # anonymous: one "viewer" with the empty name
        (t(3, 5), "carol"),
        (t(4, 1), "dave"),  # after the window's last day: on no day
    ]
    days = per_day(runs, opens, window)
    assert days == [
        {"day": "2024-03-01", "viewers": 1, "instance_hours": 2.0},
        {"day": "2024-03-02", "viewers": 2, "instance_hours": round(2 + 1 + 13.5, 3)},
        {"day": "2024-03-03", "viewers": 1, "instance_hours": 6.0},
    ]


def test_per_day_one_row_per_calendar_day_touched():
    window = (t(1, 0), t(31, 0))
    days = per_day([], [], window)
    assert [d["day"] for d in days] == [f"2024-03-{n:02d}" for n in range(1, 31)]
    assert all(d == {"day": d["day"], "viewers": 0, "instance_hours": 0.0} for d in days)
    # a window ending just after midnight touches one more day
    assert len(per_day([], [], (t(1, 0), t(31, 0, 1)))) == 31


# -- usage_for on a real store ------------------------------------------------------


NOW = t(10, 12)  # window of 2 days: Mar 8 12:00 .. Mar 10 12:00


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'usage.sqlite'}")
    yield s
    s.close()


def add_dashboard(db, owner: str, slug: str, mode: str = "shared") -> Dashboard:
    d = Dashboard(
        owner=owner, slug=slug, title=slug.title(), framework="dash", entry="app.py", mode=mode
    )
    db.add(d)
    db.flush()
    return d


def deploy(db, d: Dashboard, started, stopped=None, server_owner=None, by="alice", reason=""):
    db.add(
        Deployment(
            dashboard_id=d.id,
            dashboard_ref=d.ref,
            server_owner=server_owner or d.owner,
            server_name=d.slug,
            started_by=by,
            started=started,
            stopped=stopped,
            stopped_by=by if stopped else "",
            stop_reason=reason,
        )
    )


@pytest.fixture
def dashboards(store: Store) -> tuple[int, int, int]:
    with store.session() as db:
        sales = add_dashboard(db, "alice", "sales")
        other = add_dashboard(db, "bob", "other")
        idle = add_dashboard(db, "alice", "idle")
        # before the window, into it: 6 h inside, not started in the window
        deploy(db, sales, t(7, 12), t(8, 18), reason="culled")
        # inside: 3 h
        deploy(db, sales, t(9, 0), t(9, 3), by="bob", reason="stopped by author")
        # still running: Mar 9 02:00 to now = 34 h
        deploy(db, sales, t(9, 2), None, server_owner="alice")
        # long before the window: not counted at all
        deploy(db, sales, t(1, 0), t(2, 0))
        # another dashboard's runs do not count
        deploy(db, other, t(9, 0), None)
        db.add_all(
            [
                Open(dashboard_id=sales.id, dashboard_ref=sales.ref, viewer="alice", at=t(9, 1)),
                Open(dashboard_id=sales.id, dashboard_ref=sales.ref, viewer="alice", at=t(9, 5)),
                Open(dashboard_id=sales.id, dashboard_ref=sales.ref, viewer="", at=t(10, 1)),
                Open(dashboard_id=sales.id, dashboard_ref=sales.ref, viewer="bob", at=t(5, 1)),
                Open(dashboard_id=other.id, dashboard_ref=other.ref, viewer="carol", at=t(9, 1)),
            ]
        )
        db.commit()
        return sales.id, other.id, idle.id


def load(store: Store, *ids: int) -> list[Dashboard]:
    with store.session() as db:
        return [db.get(Dashboard, i) for i in ids]


def test_usage_for_figures(store, dashboards):
    sales_id, _, _ = dashboards
    with store.session() as db:
        [item] = usage_for(db, load(store, sales_id), days=2, now=NOW)
    assert item == {
        "owner": "alice",
        "slug": "sales",
        "title": "Sales",
        "days": 2,
        "deployments": 2,
        "instance_hours": 43.0,  # 6 + 3 + 34
        "running_share": 0.875,  # 42 of 48 hours with something running
        "mean_deployment_minutes": round(43 * 60 / 3, 2),
        "opens": 3,
        "viewers": 2,  # alice and one anonymous
        "running_now": 1,
    }


def test_usage_for_daily_rows_and_recent_deployments(store, dashboards):
    sales_id, _, _ = dashboards
    with store.session() as db:
        [item] = usage_for(db, load(store, sales_id), days=2, daily=True, now=NOW)
    assert item["daily"] == [
        {"day": "2024-03-08", "viewers": 0, "instance_hours": 6.0},
        {"day": "2024-03-09", "viewers": 1, "instance_hours": 25.0},  # 3 + 22
        {"day": "2024-03-10", "viewers": 1, "instance_hours": 12.0},
    ]
    assert item["recent"] == [
        {
            "server": "alice/sales",
            "started": "2024-03-09T02:00:00Z",
            "stopped": None,
            "started_by": "alice",
            "stopped_by": "",
            "stop_reason": "",
        },
        {
            "server": "alice/sales",
            "started": "2024-03-09T00:00:00Z",
            "stopped": "2024-03-09T03:00:00Z",
            "started_by": "bob",
            "stopped_by": "bob",
            "stop_reason": "stopped by author",
        },
        {
            "server": "alice/sales",
            "started": "2024-03-07T12:00:00Z",
            "stopped": "2024-03-08T18:00:00Z",
            "started_by": "alice",
            "stopped_by": "alice",
            "stop_reason": "culled",
        },
    ]
    assert sum(d["instance_hours"] for d in item["daily"]) == item["instance_hours"]


def test_usage_for_several_dashboards_in_order(store, dashboards):
    sales_id, other_id, idle_id = dashboards
    with store.session() as db:
        items = usage_for(db, load(store, idle_id, other_id, sales_id), days=2, now=NOW)
    assert [(i["owner"], i["slug"]) for i in items] == [
        ("alice", "idle"),
        ("bob", "other"),
        ("alice", "sales"),
    ]
    idle, other, _ = items
    assert (
        idle["deployments"],
        idle["instance_hours"],
        idle["running_share"],
        idle["mean_deployment_minutes"],
        idle["opens"],
        idle["running_now"],
    ) == (0, 0, 0, 0, 0, 0)
    assert "daily" not in idle and "recent" not in idle
    assert other["deployments"] == 1 and other["instance_hours"] == 36.0
    assert other["running_share"] == 0.75 and other["viewers"] == 1


def test_usage_for_a_longer_window_counts_older_runs(store, dashboards):
    sales_id, _, _ = dashboards
    with store.session() as db:
        [item] = usage_for(db, load(store, sales_id), days=30, now=NOW)
    # every run now lies inside: 24 + 30 + 3 + 34 hours, four deployments
    assert item["deployments"] == 4
    assert item["instance_hours"] == 91.0
    assert item["opens"] == 4 and item["viewers"] == 3


def test_usage_for_per_viewer_instances_add_up(store):
    with store.session() as db:
        d = add_dashboard(db, "alice", "lab", mode="per-viewer")
        for viewer in ("bob", "carol", "dave"):
            deploy(db, d, t(10, 0), t(10, 2), server_owner=viewer, by=viewer)
        db.commit()
        [item] = usage_for(db, [d], days=1, now=NOW)
    assert item["deployments"] == 3
    assert item["instance_hours"] == 6.0  # three instances of 2 h
    assert item["running_share"] == round(2 / 24, 4)  # but only 2 h with anything running
    assert item["mean_deployment_minutes"] == 120.0


# -- chart_svg ----------------------------------------------------------------------


def test_chart_svg_of_nothing_is_empty():
    assert chart_svg([]) == ""


def test_chart_svg_draws_a_bar_per_day_and_a_line():
    rows = [
        {"day": f"2024-03-{n:02d}", "viewers": v, "instance_hours": h}
        for n, (v, h) in enumerate([(0, 0.0), (3, 1.5), (6, 6.0), (1, 0.25)], start=1)
    ]
    svg = chart_svg(rows, width=400, height=200)
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 200"')
    assert svg.endswith("</svg>")
    assert svg.count("<rect ") == 4
    assert "<title>2024-03-02: 3 viewers, 1.5 h</title>" in svg
    assert "viewers (max 6)" in svg and "instance-hours (max 6)" in svg
    [points] = re.findall(r'<polyline [^>]*points="([^"]+)"', svg)
    ys = [float(p.split(",")[1]) for p in points.split()]
    assert len(ys) == 4
    # higher hours are drawn higher up (smaller y); the busiest day at the top of the plot
    assert ys[2] == min(ys) == 16.0 and ys[0] == max(ys) == 200 - 28
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert heights[0] == 0.0 and heights[2] == max(heights) == 200 - 28 - 16
    assert "03-01" in svg  # day labels without the year


def test_chart_svg_without_activity_does_not_divide_by_zero():
    rows = [{"day": f"2024-03-{n:02d}", "viewers": 0, "instance_hours": 0.0} for n in range(1, 31)]
    svg = chart_svg(rows)
    assert svg.count("<rect ") == 30
    assert "viewers (max 1)" in svg and "instance-hours (max 0.1)" in svg
    # labels for about six of the thirty days, not all
    assert 5 <= len(re.findall(r'font-size="10"', svg)) <= 7


def test_usage_figures_read_as_a_person_reads_them():
    from hub_viz.service.usage import share_text, when_text

    assert share_text(0.0) == "0 %"
    assert share_text(0.0002) == "under 0.1 %"  # eight minutes of thirty days
    assert share_text(0.875) == "87.5 %"
    assert share_text(1.0) == "100.0 %"
    assert when_text("2026-12-05T23:30:41.123456Z") == "2026-12-05 23:30 UTC"
    assert when_text(None) == ""
