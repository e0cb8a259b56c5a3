"""Usage figures from deployment and open records.

Per dashboard, over a window of ``days`` ending now: deployments started,
instance-hours (overlap of every run with the window, per-viewer instances
summed), share of the window during which at least one instance ran, mean
deployment length, and (``daily``) viewers and running hours per day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .store import Dashboard, Deployment, Open, utcnow

Interval = tuple[dt.datetime, dt.datetime]


def clip(start: dt.datetime, end: dt.datetime, lo: dt.datetime, hi: dt.datetime) -> Interval | None:
    s, e = max(start, lo), min(end, hi)
    return (s, e) if e > s else None


def union_seconds(intervals: Iterable[Interval]) -> float:
    """Seconds covered by at least one interval."""
    total = 0.0
    current: Interval | None = None
    for s, e in sorted(intervals):
        if current is None or s > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (s, e)
        else:
            current = (current[0], max(current[1], e))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


def summarize(
    runs: Sequence[Interval], window: Interval, started_in_window: int
) -> dict[str, float | int]:
    """Figures for runs (start, end) already clipped to ``window``."""
    window_seconds = (window[1] - window[0]).total_seconds()
    busy = sum((e - s).total_seconds() for s, e in runs)
    covered = union_seconds(runs)
    return {
        "deployments": started_in_window,
        "instance_hours": round(busy / 3600, 3),
        "running_share": round(covered / window_seconds, 4) if window_seconds else 0.0,
        "mean_deployment_minutes": round(busy / 60 / len(runs), 2) if runs else 0.0,
    }


def per_day(
    runs: Sequence[Interval], opens: Sequence[tuple[dt.datetime, str]], window: Interval
) -> list[dict[str, Any]]:
    """Per day of the window: distinct viewers and instance-hours."""
    days = []
    day = window[0].replace(hour=0, minute=0, second=0, microsecond=0)
    while day < window[1]:
        end = day + dt.timedelta(days=1)
        hours = (
            sum((c[1] - c[0]).total_seconds() for s, e in runs if (c := clip(s, e, day, end)))
            / 3600
        )
        viewers = {v or "(anonymous)" for at, v in opens if day <= at < end}
        days.append(
            {
                "day": day.date().isoformat(),
                "viewers": len(viewers),
                "instance_hours": round(hours, 3),
            }
        )
        day = end
    return days


def last_stop(db: Session, owner: str, name: str) -> str:
    """Why a server is not running, from its newest deployment record, as a sentence."""
    last = db.scalars(
        select(Deployment)
        .where(Deployment.server_owner == owner, Deployment.server_name == name)
        .order_by(Deployment.started.desc())
        .limit(1)
    ).first()
    if last is None or last.stopped is None or not last.stop_reason:
        return "Not running."
    by = f" ({last.stopped_by})" if last.stopped_by else ""
    return (
        f"Not running. Its last run ended at {last.stopped:%Y-%m-%d %H:%M:%S} UTC: "
        f"{last.stop_reason}{by}."
    )


def usage_for(
    db: Session,
    dashboards: Sequence[Dashboard],
    *,
    days: int = 30,
    daily: bool = False,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Usage of each dashboard over the last ``days`` days."""
    now = now or utcnow()
    window = (now - dt.timedelta(days=days), now)
    out = []
    for d in dashboards:
        deployments = db.scalars(
            select(Deployment).where(
                Deployment.dashboard_id == d.id,
                or_(Deployment.stopped.is_(None), Deployment.stopped > window[0]),
            )
        ).all()
        runs = [c for r in deployments if (c := clip(r.started, r.stopped or now, *window))]
        started = sum(1 for r in deployments if r.started >= window[0])
        item: dict[str, Any] = {
            "owner": d.owner,
            "slug": d.slug,
            "title": d.title,
            "days": days,
            **summarize(runs, window, started),
        }
        opens = db.execute(
            select(Open.at, Open.viewer).where(Open.dashboard_id == d.id, Open.at >= window[0])
        ).all()
        item["opens"] = len(opens)
        item["viewers"] = len({v or "(anonymous)" for _, v in opens})
        item["running_now"] = sum(1 for r in deployments if r.stopped is None)
        if daily:
            item["daily"] = per_day(runs, [(a, v) for a, v in opens], window)
            item["recent"] = [
                {
                    "server": f"{r.server_owner}/{r.server_name}",
                    "started": r.started.isoformat() + "Z",
                    "stopped": r.stopped.isoformat() + "Z" if r.stopped else None,
                    "started_by": r.started_by,
                    "stopped_by": r.stopped_by,
                    "stop_reason": r.stop_reason,
                }
                for r in sorted(deployments, key=lambda r: r.started, reverse=True)[:50]
            ]
        out.append(item)
    return out


def chart_svg(rows: Sequence[dict[str, Any]], width: int = 720, height: int = 220) -> str:
    """Bars of viewers and a line of instance-hours per day, as inline SVG."""
    if not rows:
        return ""
    pad_l, pad_b, pad_t = 36, 28, 16
    w, h = width - pad_l - 10, height - pad_b - pad_t
    n = len(rows)
    step = w / n
    max_v = max(1, max(r["viewers"] for r in rows))
    max_h = max(0.1, max(r["instance_hours"] for r in rows))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="Viewers and running hours per day" class="hub-viz-chart">',
        f'<text x="{pad_l}" y="12" font-size="11" fill="#2563eb">viewers (max {max_v})</text>',
        f'<text x="{width - 10}" y="12" font-size="11" fill="#f37626" text-anchor="end">'
        f"instance-hours (max {max_h:g})</text>",
    ]
    points = []
    for i, r in enumerate(rows):
        x = pad_l + i * step
        bh = h * r["viewers"] / max_v
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{pad_t + h - bh:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{bh:.1f}" fill="#93c5fd"><title>{r["day"]}: {r["viewers"]} viewers, '
            f"{r['instance_hours']} h</title></rect>"
        )
        points.append(f"{x + step / 2:.1f},{pad_t + h - h * r['instance_hours'] / max_h:.1f}")
        if i % max(1, n // 6) == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" font-size="10" fill="#555">'
                f"{r['day'][5:]}</text>"
            )
    parts.append(
        f'<polyline fill="none" stroke="#f37626" stroke-width="2" points="{" ".join(points)}"/>'
    )
    parts.append(
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{width - 10}" y2="{pad_t + h}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def share_text(share: float) -> str:
    """A share of time as a person reads it: "under 0.1 %" rather than "0.0 %"."""
    if share <= 0:
        return "0 %"
    if share < 0.001:
        return "under 0.1 %"
    return f"{100 * share:.1f} %"


def when_text(stamp: str | None) -> str:
    """``2026-12-05T23:30:41.123Z`` as ``2026-12-05 23:30 UTC`` (empty for None)."""
    if not stamp:
        return ""
    day, _, time = stamp.partition("T")
    return f"{day} {time[:5]} UTC" if time else day
