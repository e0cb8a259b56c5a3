"""How many preheated Voilà kernels a class's first wave needs, from earlier windows.

A dashboard kept warm for a lecture is started at the window's start; its
preheated pool then grows with demand (:mod:`hub_viz.runners.voila_pool`),
but demand is measured only once students arrive, so the first of them can
find the pool empty. The service knows better: the opens it recorded. For a
shared dashboard with preheated kernels, started inside one of its keep-warm
windows, the expected first wave is the most viewers who opened it within
any :data:`WAVE_SECONDS` in the last :data:`LOOKBACK_DAYS` days; the pool keeps
that many preheated (``warm_burst`` beyond ``warm_kernels``, within the
hub's ``max_warm_kernels`` and the instance's memory) for its first half hour.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select

from ..frameworks import PER_VIEWER
from .keepwarm import in_window, local_now
from .store import Dashboard, Open, Store

WAVE_SECONDS = 10.0
LOOKBACK_DAYS = 14


def largest_wave(opens: Sequence[tuple[dt.datetime, str]], seconds: float = WAVE_SECONDS) -> int:
    """The most viewers who opened within any ``seconds``, from ``(time, viewer)`` pairs
    sorted by time: a viewer's repeated opens (reloads, a page polling) count once, an
    anonymous open (viewer ``""``) each time."""
    in_window: Counter[str] = Counter()
    best, first = 0, 0
    keys = [viewer or f"\0{i}" for i, (_, viewer) in enumerate(opens)]
    for last, (at, _) in enumerate(opens):
        in_window[keys[last]] += 1
        while (at - opens[first][0]).total_seconds() > seconds:
            in_window[keys[first]] -= 1
            if not in_window[keys[first]]:
                del in_window[keys[first]]
            first += 1
        best = max(best, len(in_window))
    return best


def recent_wave(store: Store, dashboard_id: int, now: dt.datetime) -> int:
    """The largest wave of viewers of one dashboard in the last :data:`LOOKBACK_DAYS`
    days (``now`` in UTC, as the store's times)."""
    since = now - dt.timedelta(days=LOOKBACK_DAYS)
    with store.session() as db:
        rows = db.execute(
            select(Open.at, Open.viewer)
            .where(Open.dashboard_id == dashboard_id, Open.at >= since)
            .order_by(Open.at)
        ).all()
    return largest_wave([(at, viewer or "") for at, viewer in rows])


def warm_burst(
    d: Dashboard,
    store: Store,
    max_warm_kernels: int,
    *,
    local: dt.datetime | None = None,
    utc: dt.datetime | None = None,
) -> int:
    """Kernels to preheat beyond ``d.warm_kernels`` for a start of ``d`` now: 0 unless it
    is shared, has preheated kernels and now is inside one of its keep-warm windows."""
    if d.mode == PER_VIEWER or not d.warm_kernels or not d.keep_warm:
        return 0
    if not in_window(d.keep_warm, local or local_now()):
        return 0
    utc = utc or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    wave = recent_wave(store, d.id, utc)
    return max(0, min(wave - d.warm_kernels, max_warm_kernels - d.warm_kernels))
