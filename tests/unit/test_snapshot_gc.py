"""Snapshots no version uses are removed once old; those in use, new or not ours stay."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hub_viz.service.snapshotgc import collect_once
from hub_viz.service.store import Dashboard, Store, Version
from hub_viz.snapshots import collect_snapshots, snapshot_path, take_snapshot

pytestmark = pytest.mark.unit
HOUR = 3600


def folder(tmp_path: Path, name: str, text: str) -> Path:
    src = tmp_path / name
    src.mkdir()
    (src / "app.py").write_text(text)
    return src


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_unused_old_snapshots_and_half_made_copies_go(tmp_path: Path) -> None:
    root = tmp_path / "snaps"
    used = take_snapshot(folder(tmp_path, "a", "v1"), root, "ana", "sales", 10_000)
    unused = take_snapshot(folder(tmp_path, "b", "v2"), root, "ana", "sales", 10_000)
    fresh = take_snapshot(folder(tmp_path, "c", "v3"), root, "ana", "sales", 10_000)
    gone = take_snapshot(folder(tmp_path, "d", "x"), root, "bob", "old", 10_000)
    parent = snapshot_path(root, "ana", "sales", used).parent
    half = parent / ".tmp-0123abcd"
    half.mkdir()
    (half / "app.py").write_text("half")
    stranger = parent / "notes"  # not a name the service makes: never touched
    stranger.mkdir()
    for digest, owner, slug in (
        (used, "ana", "sales"),
        (unused, "ana", "sales"),
        (gone, "bob", "old"),
    ):
        age(snapshot_path(root, owner, slug, digest), 2 * HOUR)
    age(half, 2 * HOUR)
    age(stranger, 2 * HOUR)
    age(snapshot_path(root, "bob", "old", gone).parent, 2 * HOUR)

    removed = collect_snapshots(root, {("ana", "sales", used)}, min_age=HOUR)
    assert sorted(removed) == sorted(
        [
            snapshot_path(root, "ana", "sales", unused),
            half,
            snapshot_path(root, "bob", "old", gone),
        ]
    )
    assert snapshot_path(root, "ana", "sales", used).is_dir()
    assert snapshot_path(root, "ana", "sales", fresh).is_dir()  # a version being made
    assert stranger.is_dir()
    assert not snapshot_path(root, "bob", "old", gone).parent.exists()  # emptied: removed
    # taking a snapshot that exists again makes it new: not removed while its version is made
    again = take_snapshot(folder(tmp_path, "e", "v1"), root, "ana", "sales", 10_000)
    assert again == used
    assert collect_snapshots(root, set(), min_age=HOUR) == []


def test_a_missing_root_is_nothing_to_do(tmp_path: Path) -> None:
    assert collect_snapshots(tmp_path / "none", set()) == []


async def test_the_service_keeps_what_its_versions_name(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "snaps"
    v1 = take_snapshot(folder(tmp_path, "a", "v1"), root, "ana", "sales", 10_000)
    v2 = take_snapshot(folder(tmp_path, "b", "v2"), root, "ana", "sales", 10_000)
    unpublished = take_snapshot(folder(tmp_path, "c", "c"), root, "ana", "gone", 10_000)
    with store.session() as db:
        d = Dashboard(
            owner="ana",
            slug="sales",
            title="Sales",
            framework="dash",
            entry="a/app.py",
            mode="shared",
            snapshot=v2,
            current_version=2,
        )
        db.add(d)
        db.flush()
        db.add(Version(dashboard_id=d.id, number=1, snapshot=v1, spec={}))
        db.add(Version(dashboard_id=d.id, number=2, snapshot=v2, spec={}))
        db.commit()
    for digest, slug in ((v1, "sales"), (v2, "sales"), (unpublished, "gone")):
        age(snapshot_path(root, "ana", slug, digest), 2 * HOUR)
    assert await collect_once(store, str(root)) == 1
    assert snapshot_path(root, "ana", "sales", v1).is_dir()  # a rollback still needs it
    assert snapshot_path(root, "ana", "sales", v2).is_dir()
    assert not snapshot_path(root, "ana", "gone", unpublished).exists()
