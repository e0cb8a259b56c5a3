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
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
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

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Dashboard(Base):
    """A published dashboard: what to run, how, and who may see it."""

    __tablename__ = "dashboards"
    __table_args__ = (UniqueConstraint("owner", "slug", name="uq_dashboards_owner_slug"),)

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

    deployments: Mapped[list[Deployment]] = relationship(back_populates="dashboard")

    @property
    def ref(self) -> str:
        return f"{self.owner}/{self.slug}"


class Deployment(Base):
    """One run of a server for a dashboard: who started it, when it stopped and why."""

    __tablename__ = "deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dashboard_id: Mapped[int | None] = mapped_column(
        ForeignKey("dashboards.id", ondelete="SET NULL"), nullable=True, index=True
    )
    dashboard_ref: Mapped[str] = mapped_column(String(300))  # owner/slug, kept after deletion
    server_owner: Mapped[str] = mapped_column(String(255))
    server_name: Mapped[str] = mapped_column(String(30))
    started_by: Mapped[str] = mapped_column(String(255), default="")
    started: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    stopped: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    stopped_by: Mapped[str] = mapped_column(String(255), default="")
    stop_reason: Mapped[str] = mapped_column(String(100), default="")

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
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
