"""Keep-warm windows: times during which a shared dashboard runs, ready for viewers.

An author lists windows such as ``{"days": ["mon", "wed"], "start": "09:00",
"end": "11:00"}`` in the hub's local time (a lecture, a lab session), or
``"always"``. While now is inside one, the service starts the dashboard if it
is stopped (so the class does not wait for a cold start) and notes activity
for its running server every round, so the idle culler never sees it idle;
outside, it is culled as usual. A start that fails is tried again after
:data:`RETRY_SECONDS`, not every round.

:func:`check_windows` validates the API field and :func:`in_window` decides;
both are pure. :func:`keep_warm_once` is the loop's body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from sqlalchemy import select

from ..errors import SpecError
from ..frameworks import PER_VIEWER
from .store import Dashboard, Store

log = logging.getLogger("hub_viz.service")

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
MAX_WINDOWS = 20
RETRY_SECONDS = 600.0  # a failed warm start is tried again after this long
_START = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_END = re.compile(r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$")
_EXAMPLE = '{"days": ["mon", "wed"], "start": "09:00", "end": "11:00"}'


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def check_windows(value: Any) -> list[dict[str, Any]]:
    """The ``keep_warm`` field, checked and normalised; :class:`SpecError` (400) otherwise.

    ``None`` is no windows. Each window gets its ``days`` in week order (all
    seven when left out); ``end`` may be ``"24:00"`` and must come after
    ``start`` on the same day (split a window that crosses midnight in two).
    """
    if value is None:
        return []
    if value == "always":
        return [{"days": list(DAYS), "start": "00:00", "end": "24:00"}]
    if not isinstance(value, list):
        raise SpecError(f"'keep_warm' must be \"always\" or a list of windows such as {_EXAMPLE}.")
    if len(value) > MAX_WINDOWS:
        raise SpecError(f"'keep_warm' may list at most {MAX_WINDOWS} windows.")
    windows = []
    for i, window in enumerate(value, 1):
        where = f"keep_warm window {i}"
        if not isinstance(window, dict):
            raise SpecError(f"Each keep_warm window must be an object such as {_EXAMPLE}.")
        unknown = set(window) - {"days", "start", "end"}
        if unknown:
            raise SpecError(
                f"Unknown key(s) {sorted(unknown)} in {where}; allowed: days, start, end."
            )
        days = window.get("days")
        if days is None:
            days = list(DAYS)
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, str) and d.strip().lower() in DAYS for d in days)
        ):
            raise SpecError(
                f"'days' in {where} must be a non-empty list of {', '.join(DAYS)} "
                "(or left out for every day)."
            )
        wanted = {d.strip().lower() for d in days}
        start, end = window.get("start"), window.get("end")
        if not isinstance(start, str) or not _START.fullmatch(start):
            raise SpecError(f"'start' in {where} must be a time HH:MM from 00:00 to 23:59.")
        if not isinstance(end, str) or not _END.fullmatch(end):
            raise SpecError(f"'end' in {where} must be a time HH:MM from 00:01 to 24:00.")
        if _minutes(end) <= _minutes(start):
            raise SpecError(
                f"'end' ({end}) in {where} must come after 'start' ({start}); "
                "split a window that crosses midnight in two."
            )
        windows.append({"days": [d for d in DAYS if d in wanted], "start": start, "end": end})
    return windows


def in_window(windows: Iterable[Mapping[str, Any]], now: dt.datetime) -> bool:
    """Is ``now`` (the hub's local wall-clock time) inside one of ``windows``?

    A window includes its start and excludes its end: 09:00-11:00 holds
    09:00:00 and 10:59:59, not 11:00:00.
    """
    day = DAYS[now.weekday()]
    minute = now.hour * 60 + now.minute + now.second / 60 + now.microsecond / 60e6
    for window in windows:
        days = window.get("days") or DAYS
        if day in days and _minutes(window["start"]) <= minute < _minutes(window["end"]):
            return True
    return False


class Notes(Protocol):
    def note(self, owner: str, server: str) -> None: ...


class RunningServers(Protocol):
    async def active_servers(self) -> Mapping[tuple[str, str], Mapping[str, Any]]: ...


class Starter(Protocol):
    async def ensure_running(self, d: Dashboard, viewer: str | None) -> Any: ...


def local_now() -> dt.datetime:
    """The local wall-clock time (the hub's: the service inherits its TZ). A seam for tests."""
    return dt.datetime.now()


async def keep_warm_once(
    store: Store,
    hub: RunningServers,
    activity: Notes,
    now: dt.datetime | None = None,
    *,
    starter: Starter | None = None,
    attempts: dict[tuple[str, str], float] | None = None,
    clock: float | None = None,
) -> list[tuple[str, str]]:
    """Start (with ``starter``) and note activity for every shared dashboard inside a window.

    Returns the dashboards kept warm: ready ones noted and stopped ones started.
    ``attempts`` remembers when each start was last tried (monotonic ``clock``).
    """
    now = now or local_now()
    with store.session() as db:
        rows = db.scalars(select(Dashboard).where(Dashboard.mode != PER_VIEWER)).all()
    warm = {(d.owner, d.slug): d for d in rows if d.keep_warm and in_window(d.keep_warm, now)}
    if not warm:
        return []
    running = await hub.active_servers()
    attempts = attempts if attempts is not None else {}
    clock = clock if clock is not None else time.monotonic()
    kept = []
    for key, d in warm.items():
        server = running.get(key)
        if server is not None:  # running, or already starting
            if server.get("ready"):
                activity.note(*key)
                kept.append(key)
        elif starter is not None and clock - attempts.get(key, -RETRY_SECONDS) >= RETRY_SECONDS:
            attempts[key] = clock
            try:
                await starter.ensure_running(d, None)
            except Exception as e:  # the dashboard is broken or the hub busy: tried later
                log.warning("Keeping %s warm: its start failed: %s", d.ref, e)
                continue
            log.info("Started %s for its keep-warm window", d.ref)
            kept.append(key)
    return kept


async def keep_warm_forever(
    store: Store,
    hub: RunningServers,
    activity: Notes,
    interval: float = 60,
    starter: Starter | None = None,
) -> None:
    attempts: dict[tuple[str, str], float] = {}
    while True:
        try:
            await keep_warm_once(store, hub, activity, starter=starter, attempts=attempts)
        except Exception:  # the next round may succeed
            log.exception("Keeping dashboards warm failed")
        await asyncio.sleep(interval)


__all__ = [
    "DAYS",
    "MAX_WINDOWS",
    "check_windows",
    "in_window",
    "keep_warm_forever",
    "keep_warm_once",
]
