"""Snapshots no version needs any more are removed (:func:`hub_viz.snapshots.collect_snapshots`).

Every version of a dashboard published from the author's files keeps its
snapshot, so that it can be previewed and rolled back to; when a dashboard is
unpublished its versions go, and with them the need for their copies. The
service looks once at start-up and then every ``interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from ..snapshots import collect_snapshots
from .store import Dashboard, Store, Version

log = logging.getLogger("hub_viz.service")


def referenced_snapshots(store: Store) -> set[tuple[str, str, str]]:
    """``(owner, slug, digest)`` of every version's snapshot, and of every dashboard's."""
    with store.session() as db:
        rows = db.execute(
            select(Dashboard.owner, Dashboard.slug, Version.snapshot)
            .join(Version, Version.dashboard_id == Dashboard.id)
            .where(Version.snapshot != "")
        ).all()
        current = db.execute(
            select(Dashboard.owner, Dashboard.slug, Dashboard.snapshot).where(
                Dashboard.snapshot != ""
            )
        ).all()
    return {(o, s, d) for o, s, d in [*rows, *current] if d}


async def collect_once(store: Store, root: str, min_age: float = 3600.0) -> int:
    """One look: the number of snapshots removed."""
    referenced = referenced_snapshots(store)  # read before the folders are listed
    removed = await asyncio.get_running_loop().run_in_executor(
        None, lambda: collect_snapshots(root, referenced, min_age=min_age)
    )
    for path in removed:
        log.info("Removed snapshot %s: no version of a dashboard uses it", path)
    return len(removed)


async def collect_forever(store: Store, root: str, interval: float) -> None:
    while True:
        try:
            await collect_once(store, root)
        except Exception:  # a bad folder must not end the loop
            log.exception("Collecting unused snapshots failed")
        await asyncio.sleep(interval)
