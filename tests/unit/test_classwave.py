"""A class's first wave, from the opens of earlier keep-warm windows."""

from __future__ import annotations

import datetime as dt

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import SpecError
from hub_viz.frameworks import build_command
from hub_viz.service.classwave import largest_wave, warm_burst
from hub_viz.service.store import Dashboard, Open, Store
from hub_viz.spec import check_warm_burst

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 7, 9, 0, 30)  # a Monday, 09:00:30 (local and UTC alike here)
MONDAYS = [{"days": ["mon"], "start": "09:00", "end": "11:00"}]


def at(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_the_largest_wave_is_the_most_viewers_within_ten_seconds() -> None:
    assert largest_wave([]) == 0
    opens = [(at(s), v) for s, v in [(100, "a"), (99, "b"), (95, "c"), (91, "d"), (50, "e")]]
    opens += [(at(49), "f"), (at(10), "g")]
    assert largest_wave(opens) == 4  # 100, 99, 95 and 91 s ago
    assert largest_wave(opens, seconds=1) == 2
    # one viewer reloading (or a page polling) is one viewer; anonymous opens each count
    polling = [(at(9 - i), "teacher") for i in range(9)] + [(at(0.5), "a")]
    assert largest_wave(polling) == 2
    assert largest_wave([(at(3 - i), "") for i in range(3)]) == 3


def lecture(store: Store, **fields: object) -> Dashboard:
    d = Dashboard(
        owner="ana",
        slug="lecture",
        title="Lecture",
        framework="voila",
        entry="l.ipynb",
        mode=fields.pop("mode", "shared"),
        warm_kernels=fields.pop("warm_kernels", 1),
        keep_warm=fields.pop("keep_warm", MONDAYS),
    )
    with store.session() as db:
        db.add(d)
        db.flush()
        # last Monday's class: 9 opens within 6 s; a smaller wave on Wednesday; an old one
        week = dt.timedelta(days=7)
        for i in range(9):
            db.add(
                Open(dashboard_id=d.id, dashboard_ref=d.ref, viewer=f"s{i}", at=at(i * 0.7) - week)
            )
        for i in range(3):
            db.add(
                Open(
                    dashboard_id=d.id, dashboard_ref=d.ref, viewer=f"s{i}", at=at(i) - 2 * week / 7
                )
            )
        for i in range(30):
            db.add(Open(dashboard_id=d.id, dashboard_ref=d.ref, at=at(i * 0.1) - 3 * week))
        db.commit()
    return d


def test_a_start_inside_a_keep_warm_window_preheats_for_last_weeks_wave(store: Store) -> None:
    d = lecture(store)
    # 9 arrived together last week; the author keeps 1 preheated: 8 more, for this start
    assert warm_burst(d, store, 100, local=NOW, utc=NOW) == 8
    # within the hub's max_warm_kernels
    assert warm_burst(d, store, 5, local=NOW, utc=NOW) == 4
    # outside the window, nothing more
    assert warm_burst(d, store, 100, local=NOW + dt.timedelta(hours=3), utc=NOW) == 0


@pytest.mark.parametrize(
    "fields",
    [{"mode": "per-viewer"}, {"warm_kernels": 0}, {"keep_warm": []}],
)
def test_only_shared_kept_warm_dashboards_with_preheated_kernels_get_more(
    store: Store, fields: dict
) -> None:
    d = lecture(store, **fields)
    assert warm_burst(d, store, 100, local=NOW, utc=NOW) == 0


def test_a_spec_s_burst_is_checked_and_reaches_voilas_pool() -> None:
    assert check_warm_burst(None, 1) == 0 and check_warm_burst(4, 1, 5) == 4
    with pytest.raises(SpecError, match="at most 5"):
        check_warm_burst(5, 1, 5)
    with pytest.raises(SpecError, match="adds to 'warm_kernels'"):
        check_warm_burst(2, 0)
    with pytest.raises(SpecError, match="whole number"):
        check_warm_burst(True, 1)
    cmd = build_command(
        BUILTIN_FRAMEWORKS["voila"],
        entry="l.ipynb",
        port=1,
        prefix="/p/",
        warm_kernels=1,
        warm_burst=8,
    )
    assert "--PoolKernelManager.burst=8" in cmd.argv
