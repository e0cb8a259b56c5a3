"""Private SQLite databases: the service's store and the hub's database, mode 0600.

The service's store and the hub's database hold private dashboards, who
opened what and the hub's tokens. SQLite gives its ``-wal``, ``-shm`` and
``-journal`` files the mode of the database file, so making the database file
private before SQLite creates it is enough. The hub opens its database itself
(``JupyterHub.db_url``, possibly set after ``configure()``), so
:func:`hub_viz.config.configure` adds :class:`PrivateSQLite`, a SQLAlchemy
engine plugin that runs with the final URL just before the hub connects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import CreateEnginePlugin, make_url

from .filemodes import log, make_private

PLUGIN = "hub_viz_private_sqlite"


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
        make_sqlite_private(url, logging.getLogger("JupyterHub"))

    def update_url(self, url: Any) -> Any:
        return url


def register_plugin() -> str:
    """Make :class:`PrivateSQLite` known to SQLAlchemy in this process; its name."""
    from sqlalchemy.dialects import plugins

    plugins.register(PLUGIN, __name__, "PrivateSQLite")
    return PLUGIN
