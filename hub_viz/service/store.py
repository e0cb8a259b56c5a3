"""The service's own store: dashboards, deployments and opens (SQLAlchemy).

SQLite file by default, any SQLAlchemy URL by config; the schema is managed
by alembic migrations shipped in ``hub_viz/service/migrations``. The hub's
database is never touched.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    sessionmaker,
)

from ..dbfiles import make_sqlite_private
from ..errors import HubVizError

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Dashboard(Base):
    """A published dashboard: what to run, how, and who may see it."""

    __tablename__ = "dashboards"
    __table_args__ = (
        UniqueConstraint("owner", "slug", name="uq_dashboards_owner_slug"),
        UniqueConstraint("hook_id", name="uq_dashboards_hook_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    slug: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    framework: Mapped[str] = mapped_column(String(50))
    # "path": a folder in the owner's storage ("" is its root); "git": a URL + ref.
    source_type: Mapped[str] = mapped_column(String(10), default="path")
    source: Mapped[str] = mapped_column(String(500), default="")
    git_ref: Mapped[str] = mapped_column(String(200), default="")
    entry: Mapped[str] = mapped_column(String(500))
    args: Mapped[list] = mapped_column(JSON, default=list)
    mode: Mapped[str] = mapped_column(String(20), default="shared")
    visibility: Mapped[str] = mapped_column(String(20), default="private")
    share_users: Mapped[list] = mapped_column(JSON, default=list)
    share_groups: Mapped[list] = mapped_column(JSON, default=list)
    profile: Mapped[str] = mapped_column(String(100), default="")
    # Windows during which the dashboard is kept running, e.g.
    # [{"days": ["mon", "wed"], "start": "09:00", "end": "11:00"}] (hub's local time).
    keep_warm: Mapped[list] = mapped_column(JSON, default=list)
    # The author's limits beyond the profile, e.g. {"cpu": 1.0, "memory": "2G"}.
    resources: Mapped[dict] = mapped_column(JSON, default=dict)
    # Voilà: kernels kept preheated (the notebook already ran) for the next viewers.
    warm_kernels: Mapped[int] = mapped_column(Integer, default=0)
    # Per-viewer: instances kept started, each handed to the next viewer who opens it.
    warm_pool: Mapped[int] = mapped_column(Integer, default=0)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    thumbnail_updated: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # The version viewers get (its number, see Version); the run fields above, ``commit``
    # and ``snapshot`` are that version's.
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    commit: Mapped[str] = mapped_column(String(40), default="")  # git: the ref's SHA
    snapshot: Mapped[str] = mapped_column(String(64), default="")  # path: copied files
    # git: make a version of each new commit on the branch (push or periodic check),
    # current on its own only with ``auto_current``
    follow_branch: Mapped[bool] = mapped_column(Boolean, default=False)
    auto_current: Mapped[bool] = mapped_column(Boolean, default=False)
    # the webhook's id in its URL; its secret is derived from it with the service's key
    hook_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    checked: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    deployments: Mapped[list[Deployment]] = relationship(back_populates="dashboard")

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


class Deployment(Base):
    """One run of a server for a dashboard: who started it, when it stopped and why.

    The store keeps the records true: at most one open run per server, and per
    dashboard at most one open run serving each viewer (``viewer``: the person a
    per-viewer instance serves, their own server or a warm-pool instance handed
    to them; None for shared servers and unclaimed pool instances).
    """

    __tablename__ = "deployments"
    __table_args__ = (
        Index(
            "uq_deployments_open_server",
            "server_owner",
            "server_name",
            unique=True,
            sqlite_where=text("stopped IS NULL"),
            postgresql_where=text("stopped IS NULL"),
        ),
        Index(
            "uq_deployments_open_viewer",
            "dashboard_id",
            "viewer",
            unique=True,
            sqlite_where=text("stopped IS NULL AND viewer IS NOT NULL"),
            postgresql_where=text("stopped IS NULL AND viewer IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int | None] = mapped_column(
        ForeignKey("dashboards.id", ondelete="SET NULL"), nullable=True, index=True
    )
    dashboard_ref: Mapped[str] = mapped_column(String(300))  # owner/slug, kept after deletion
    server_owner: Mapped[str] = mapped_column(String(255))
    server_name: Mapped[str] = mapped_column(String(30))
    viewer: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_by: Mapped[str] = mapped_column(String(255), default="")
    started: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    stopped: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    stopped_by: Mapped[str] = mapped_column(String(255), default="")
    stop_reason: Mapped[str] = mapped_column(String(100), default="")
    # the dashboard's version this run serves (None: from before versions)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preview: Mapped[bool] = mapped_column(Boolean, default=False)

    dashboard: Mapped[Dashboard | None] = relationship(back_populates="deployments")


class Open(Base):
    """A viewer opening a dashboard (anonymous viewers have an empty name)."""

    __tablename__ = "opens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int | None] = mapped_column(
        ForeignKey("dashboards.id", ondelete="SET NULL"), nullable=True, index=True
    )
    dashboard_ref: Mapped[str] = mapped_column(String(300))
    viewer: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Version(Base):
    """One publish or update of a dashboard: what ran (``spec``), from which source
    (a git commit, or a snapshot of the author's files) and in which environment."""

    __tablename__ = "dashboard_versions"
    __table_args__ = (
        UniqueConstraint("dashboard_id", "number", name="uq_dashboard_versions_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(
        ForeignKey("dashboards.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    # the run fields: framework, entry, args, mode, profile, resources, warm_kernels,
    # source_type, source, git_ref
    spec: Mapped[dict] = mapped_column(JSON, default=dict)
    commit: Mapped[str] = mapped_column(String(40), default="")
    snapshot: Mapped[str] = mapped_column(String(64), default="")
    # the requirement files' digest, and the lock/environment once an instance built it
    environment: Mapped[dict] = mapped_column(JSON, default=dict)
    origin: Mapped[str] = mapped_column(String(20), default="")  # publish, update, push, check
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class EmbedGrant(Base):
    """An embed link: the origins that may frame a dashboard, until it expires or is revoked."""

    __tablename__ = "embed_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int] = mapped_column(
        ForeignKey("dashboards.id", ondelete="CASCADE"), index=True
    )
    origins: Mapped[list] = mapped_column(JSON, default=list)
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    dashboard: Mapped[Dashboard] = relationship()

    def live(self, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        return self.revoked is None and (self.expires is None or self.expires > now)


class WarmInstance(Base):
    """A per-viewer instance started ahead: warming, ready, or handed to one viewer.

    Its server belongs to the hub's pool user; ``viewer`` is set exactly once,
    when the instance is claimed (see :mod:`hub_viz.service.warmpool`).
    """

    __tablename__ = "warm_instances"
    # one claimed instance per viewer and dashboard (NULLs, the unclaimed, are distinct)
    __table_args__ = (
        UniqueConstraint("dashboard_id", "viewer", name="uq_warm_instances_dashboard_viewer"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int | None] = mapped_column(
        ForeignKey("dashboards.id", ondelete="SET NULL"), nullable=True, index=True
    )
    server_name: Mapped[str] = mapped_column(String(30), unique=True)
    # "starting", "ready" or "claimed"
    state: Mapped[str] = mapped_column(String(10), default="starting", index=True)
    # which spec it runs (a digest): a changed dashboard drains older instances
    spec_digest: Mapped[str] = mapped_column(String(64), default="")
    viewer: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    claimed: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class StoreUnavailable(HubVizError):
    """The store cannot save (or read) right now: its disk is full, or the database is down."""

    status_code = 503


def store_failure(exc: BaseException, url: str = "") -> StoreUnavailable:
    """What to tell the person (507 or 503) and the operator about a failed store call."""
    text = str(exc).lower()
    where = f" ({_plain_url(url)})" if url else ""
    if "disk is full" in text or "no space left" in text or "disk full" in text:
        e = StoreUnavailable(
            "The hub's state disk is full, so this could not be saved; tell your operator.",
            log_message=f"The service's store{where} is full: free space on the disk that "
            "holds it (the hub's state folder, or DashboardService.db_url). Running "
            "dashboards still open; publishing, updates, stops and new starts fail until then.",
        )
        e.status_code = 507
        return e
    if "readonly" in text or "read-only" in text:
        detail = "is read-only: make it and its folder writable by the service"
    else:
        detail = "cannot be reached or refused the query: check the database and its disk"
    return StoreUnavailable(
        "The dashboard service cannot save its records right now; try again in a minute, "
        "and tell your operator if it lasts.",
        log_message=f"The service's store{where} {detail} ({type(exc).__name__}: {exc}).",
    )


def _plain_url(url: str) -> str:
    """A store URL for the log, without a password."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, creds = head.partition("://")
    return f"{scheme}://{creds.split(':', 1)[0]}:***@{tail}"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema."""
    command.upgrade(alembic_config(url), "head")


class Store:
    """Sessions on the service's database, migrated on open."""

    def __init__(self, url: str, migrate: bool = True, **engine_kwargs: Any) -> None:
        self.url = url
        make_sqlite_private(url)  # private dashboards and who opened what: mode 0600
        if migrate:
            upgrade(url)
        self.engine = create_engine(url, **engine_kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    def find(self, db: Session, owner: str, slug: str) -> Dashboard | None:
        return db.scalar(select(Dashboard).where(Dashboard.owner == owner, Dashboard.slug == slug))

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # a commit does not wait for the disk: the service commits on its event loop, and
    # every open of a class at once queued behind each fsync; still atomic and safe when
    # the service crashes, only a power cut may lose the last records
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
