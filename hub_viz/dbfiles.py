"""Private SQLite databases: the service's store and the hub's database, mode 0600.

The service's store and the hub's database hold private dashboards, who
opened what and the hub's tokens. SQLite gives its ``-wal``, ``-shm`` and
``-journal`` files the mode of the database file, so making the database file
private before SQLite creates it is enough. The hub opens its database itself
(``JupyterHub.db_url``, possibly set after ``configure()``), so
:func:`hub_viz.config.configure` adds :class:`PrivateSQLite`, a SQLAlchemy
engine plugin that runs with the final URL just before the hub connects.

The same plugin can put the hub's SQLite file in write-ahead-log mode with
``synchronous=NORMAL`` (``hub_viz_sqlite_wal`` in ``JupyterHub.db_kwargs``,
which :func:`hub_viz.config.configure` sets for the local spawner): the hub
commits on its event loop, and a commit that waits for the disk (``fsync``)
stalls every request and spawn behind it, which a class starting its
dashboards at once felt most. In WAL mode with ``synchronous=NORMAL`` a commit
is still atomic and survives the hub crashing; only a power cut can lose the
last commits (servers started in the last moments, which the hub finds again
from their spawners' state or loses like any start under way). WAL needs a
local file system (not NFS), hence off for the Kubernetes spawner.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import CreateEnginePlugin, make_url

from .filemodes import log, make_private

PLUGIN = "hub_viz_private_sqlite"
WAL_ARG = "hub_viz_sqlite_wal"  # db_kwargs key: WAL mode with synchronous=NORMAL


def sqlite_file(url: Any) -> Path | None:
    """The file of a SQLite URL; None for other databases and in-memory ones."""
    u = make_url(url)
    database = u.database or ""
    if u.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):  # SQLite URI filenames: leave them to SQLite
        return None
    return Path(database)


def make_sqlite_private(url: Any, logger: logging.Logger = log) -> None:
    """:func:`make_private` for the file of a SQLite URL (nothing for other databases)."""
    path = sqlite_file(url)
    if path is not None:
        make_private(path, logger)


class PrivateSQLite(CreateEnginePlugin):
    """Engine plugin: the SQLite file is made private before the engine connects."""

    def __init__(self, url: Any, kwargs: dict[str, Any]) -> None:
        super().__init__(url, kwargs)
        self.wal = bool(kwargs.pop(WAL_ARG, False)) and sqlite_file(url) is not None
        make_sqlite_private(url, logging.getLogger("JupyterHub"))

    def update_url(self, url: Any) -> Any:
        return url

    def engine_created(self, engine: Any) -> None:
        if self.wal:
            event.listen(engine, "connect", wal_pragmas)


def wal_pragmas(conn: Any, _record: Any) -> None:
    """Write-ahead log, and commits that do not wait for the disk (see the module)."""
    cursor = conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def register_plugin() -> str:
    """Make :class:`PrivateSQLite` known to SQLAlchemy in this process; its name."""
    from sqlalchemy.dialects import plugins

    plugins.register(PLUGIN, __name__, "PrivateSQLite")
    return PLUGIN
