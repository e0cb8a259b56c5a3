"""Versions of a dashboard: each publish or update is one, and viewers get the current one.

A version holds the run fields (:data:`RUN_FIELDS`), where its source was
then (``commit``: the SHA its git ref resolved to; ``snapshot``: the copy of
the author's files, see :mod:`hub_viz.snapshots`) and, once an instance of
it prepared one, its environment (lock and environment key). The dashboard
row carries the current version's fields, so everything that starts a
dashboard runs the current version; a preview runs another version on a
server of the author's own (:func:`preview_name`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..errors import SpecError
from ..gitfetch import is_commit, resolve_commit
from ..snapshots import take_snapshot
from ..sources import GitSource
from .dashboards import NotFound
from .store import Dashboard, Version

RUN_FIELDS = (
    "framework",
    "entry",
    "args",
    "mode",
    "profile",
    "resources",
    "warm_kernels",
    "source_type",
    "source",
    "git_ref",
)
PUBLISH, UPDATE, PUSH, CHECK = "publish", "update", "push", "check"
RESOLVE_TIMEOUT = 30.0


@dataclass
class Sources:
    """Where the service pins a version's source: the settings it needs."""

    dashboards_root: str = "/home/{username}"
    check_files: bool = True
    snapshots_root: str = ""
    snapshot_max_bytes: int = 100_000_000
    git_schemes: tuple[str, ...] = ("https",)

    async def pin(self, owner: str, slug: str, fields: dict[str, Any]) -> dict[str, str]:
        """``commit`` and ``snapshot`` for a version with run ``fields`` (400 if neither
        the ref resolves nor the files can be kept)."""
        if fields.get("source_type") == "git":
            commit = await resolve_commit(
                GitSource(fields["source"], fields["git_ref"]),
                schemes=self.git_schemes,
                timeout=RESOLVE_TIMEOUT,
            )
            return {"commit": commit, "snapshot": ""}
        if not self.snapshots_root or not self.check_files:
            return {"commit": "", "snapshot": ""}  # the files are read where it runs
        loop = asyncio.get_running_loop()
        digest = await loop.run_in_executor(None, self.snapshot, owner, slug, fields["entry"])
        return {"commit": "", "snapshot": digest}

    def snapshot(self, owner: str, slug: str, entry: str) -> str:
        """Copy the entry's folder as a snapshot of ``owner/slug``; its digest."""
        root = Path(self.dashboards_root.format(username=owner)).resolve()
        target = root.joinpath(*Path(entry).parts)
        if not target.exists():
            raise SpecError(f"The entry {entry!r} does not exist.")
        # checked again here, resolved: a folder swapped for a link since the publish's
        # check must not make the service copy what it may read and the author may not
        folder = target.parent.resolve()
        if folder != root and root not in folder.parents:
            raise SpecError(f"The entry {entry!r} points outside your dashboards folder.")
        return take_snapshot(folder, self.snapshots_root, owner, slug, self.snapshot_max_bytes)


def run_fields(source: Any) -> dict[str, Any]:
    """The run fields of a dashboard (or of validated fields, a dict)."""
    get = source.get if isinstance(source, dict) else lambda k: getattr(source, k)
    spec = {k: copy.deepcopy(get(k)) for k in RUN_FIELDS}
    spec["args"] = list(spec["args"] or [])
    spec["resources"] = dict(spec["resources"] or {})
    spec["warm_kernels"] = int(spec["warm_kernels"] or 0)
    spec["profile"] = spec["profile"] or ""
    return spec


def add_version(
    db: Session, d: Dashboard, spec: dict[str, Any], pins: dict[str, str], *, by: str, origin: str
) -> Version:
    """Add the next version of ``d`` (flushed, not committed)."""
    last = db.scalar(select(func.max(Version.number)).where(Version.dashboard_id == d.id)) or 0
    v = Version(
        dashboard_id=d.id,
        number=last + 1,
        spec=spec,
        commit=pins.get("commit", ""),
        snapshot=pins.get("snapshot", ""),
        environment={},
        origin=origin,
        created_by=by,
    )
    db.add(v)
    db.flush()
    return v


def make_current(d: Dashboard, v: Version) -> None:
    """Give ``d`` the run fields and source of ``v``: viewers get it from now on."""
    for key, value in v.spec.items():
        if key in RUN_FIELDS:
            setattr(d, key, copy.deepcopy(value))
    d.commit = v.commit
    d.snapshot = v.snapshot
    d.current_version = v.number


def same_source(d: Dashboard, spec: dict[str, Any], pins: dict[str, str]) -> bool:
    """Would a version with ``spec`` and ``pins`` run exactly what ``d`` runs now?"""
    return (
        run_fields(d) == spec
        and d.commit == pins.get("commit", "")
        and d.snapshot == pins.get("snapshot", "")
    )


def find_version(db: Session, d: Dashboard, number: str | int) -> Version:
    """Version ``number`` of ``d``: 404 with a plain message when there is none."""
    text = str(number)
    if not text.isdigit() or len(text) > 9:
        raise NotFound(
            f"No version {text[:20]!r} of {d.ref}: versions are numbered 1, 2, 3 and so on."
        )
    v = db.scalar(select(Version).where(Version.dashboard_id == d.id, Version.number == int(text)))
    if v is None:
        raise NotFound(f"{d.ref} has no version {int(text)}.")
    return v


def versions_of(db: Session, d: Dashboard) -> list[Version]:
    return list(
        db.scalars(
            select(Version).where(Version.dashboard_id == d.id).order_by(Version.number.desc())
        ).all()
    )


def as_dashboard(d: Dashboard, v: Version) -> Dashboard:
    """A detached copy of ``d`` running version ``v`` (what a preview starts)."""
    view = Dashboard(
        id=d.id,
        owner=d.owner,
        slug=d.slug,
        title=d.title,
        description=d.description,
        visibility=d.visibility,
        share_users=[],
        share_groups=[],
        keep_warm=[],
        warm_pool=0,
    )
    for key in RUN_FIELDS:
        setattr(view, key, getattr(d, key))
    make_current(view, v)
    return view


def preview_name(owner: str, slug: str, number: int) -> str:
    """The author's server that previews version ``number``: ``<slug>-v<n>-<hash>``, a
    JupyterHub server name (a safe slug of at most 30 characters). Only the author's
    own dashboards share its namespace; a preview never starts on a server one of them
    uses (:class:`~hub_viz.service.versions_api.PreviewHandler` checks)."""
    digest = hashlib.sha256(f"preview\0{owner}/{slug}\0{number}".encode()).hexdigest()[:6]
    return f"{slug[:14].rstrip('-')}-v{number}-{digest}"


def version_json(v: Version, d: Dashboard, *, prefix: str) -> dict[str, Any]:
    base = f"{prefix}api/dashboards/{d.owner}/{d.slug}/versions/{v.number}"
    spec = v.spec or {}
    data: dict[str, Any] = {
        "number": v.number,
        "current": v.number == d.current_version,
        "origin": v.origin,
        "created": v.created.isoformat() + "Z" if v.created else None,
        "created_by": v.created_by,
        "framework": spec.get("framework"),
        "entry": spec.get("entry"),
        "mode": spec.get("mode"),
        "args": spec.get("args") or [],
        "git": (
            {"url": spec.get("source"), "ref": spec.get("git_ref"), "commit": v.commit}
            if spec.get("source_type") == "git"
            else None
        ),
        "snapshot": v.snapshot or None,
        "environment": dict(v.environment or {}),
        "preview_url": base + "/preview",
        "make_current_url": base + "/current",
    }
    return data


VERSION_OPTIONS = ("make_current", "new_version", "follow_branch", "auto_current")


def pop_options(data: Any) -> dict[str, bool]:
    """The versioning options of a publish or update body, taken out of it."""
    if not isinstance(data, dict):
        return {}
    out: dict[str, bool] = {}
    for key in VERSION_OPTIONS:
        if key in data:
            value = data.pop(key)
            if not isinstance(value, bool):
                raise SpecError(f"'{key}' must be true or false.")
            out[key] = value
    return out


def apply_follow(d: Dashboard, options: dict[str, bool], fields: dict[str, Any]) -> None:
    """Set branch following from ``options`` (only a git dashboard on a branch follows)."""
    follow = options.get("follow_branch", d.follow_branch or False)
    auto = options.get("auto_current", d.auto_current or False)
    git = fields.get("source_type") == "git"
    if (options.get("follow_branch") or options.get("auto_current")) and not git:
        raise SpecError(
            "Only a dashboard from git can follow a branch: give 'git' with the branch "
            "as its 'ref'."
        )
    if follow and git and is_commit(fields.get("git_ref", "")):
        raise SpecError("A commit cannot be followed: give a branch as the git 'ref'.")
    d.follow_branch = bool(follow and git)
    d.auto_current = bool(auto and git)
    if not git:
        d.hook_id = None
