"""Private files: the service's store, the hub's database and the secrets, mode 0600.

Every test runs with umask 022, the usual default, under which a plain new
file is 0644 (readable by every local account).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyterhub import orm
from sqlalchemy import text
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.dbfiles import PLUGIN, WAL_ARG, sqlite_file
from hub_viz.filemodes import make_private
from hub_viz.service.embeds import load_secret
from hub_viz.service.store import Store
from hub_viz.signing import ensure_key_pair

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _umask_022(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path, stem: str) -> dict[str, int]:
    """The database file and every side file SQLite made next to it."""
    return {p.name: mode(p) for p in sorted(folder.glob(stem + "*"))}


def test_the_umask_alone_makes_files_readable_by_everyone(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    assert mode(tmp_path / "plain") == 0o644


def test_the_services_store_and_its_wal_files_are_private(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub_viz.sqlite'}")
    with store.session() as db:  # a write in WAL mode: -wal and -shm exist while open
        db.execute(text("CREATE TABLE probe (x INTEGER)"))
        db.execute(text("INSERT INTO probe VALUES (1)"))
        db.commit()
        found = modes(tmp_path, "hub_viz.sqlite")
    store.close()
    assert set(found) == {"hub_viz.sqlite", "hub_viz.sqlite-wal", "hub_viz.sqlite-shm"}
    assert set(found.values()) == {0o600}, {k: oct(v) for k, v in found.items()}


def hub_database(url: str, db_kwargs: dict) -> None:
    """Open a hub database the way JupyterHub's init_db does, and write to it."""
    factory = orm.new_session_factory(url, **db_kwargs)
    db = factory()
    db.add(orm.User(name="probe"))
    db.commit()
    db.close()
    factory.kw["bind"].dispose()


def test_configure_makes_the_hubs_database_private_even_with_db_url_set_after_it(
    tmp_path: Path,
) -> None:
    c = Config()
    configure(c, state_dir=str(tmp_path / "state"))
    c.JupyterHub.db_url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"  # after configure()
    assert PLUGIN in c.JupyterHub.db_kwargs["plugins"]
    hub_database(c.JupyterHub.db_url, c.JupyterHub.db_kwargs)
    assert modes(tmp_path, "elsewhere.sqlite") == {"elsewhere.sqlite": 0o600}


def test_the_hubs_default_database_in_the_working_directory_is_private(tmp_path: Path) -> None:
    c = Config()
    configure(c, state_dir=str(tmp_path / "state"))
    hub_database("sqlite:///jupyterhub.sqlite", c.JupyterHub.db_kwargs)  # the hub's default
    assert modes(tmp_path, "jupyterhub.sqlite") == {"jupyterhub.sqlite": 0o600}


def test_without_configure_the_hubs_database_is_readable_by_everyone(tmp_path: Path) -> None:
    hub_database(f"sqlite:///{tmp_path / 'plain.sqlite'}", {})
    assert mode(tmp_path / "plain.sqlite") == 0o644


def test_configure_keeps_the_operators_db_kwargs(tmp_path: Path) -> None:
    c = Config()
    c.JupyterHub.db_kwargs = {"pool_recycle": 30, "plugins": ["theirs"]}
    configure(c, state_dir=str(tmp_path))
    configure(c, state_dir=str(tmp_path))  # twice: still one plugin of ours
    assert c.JupyterHub.db_kwargs == {
        "pool_recycle": 30,
        "plugins": ["theirs", PLUGIN],
        WAL_ARG: True,
    }


def hub_pragmas(url: str, db_kwargs: dict) -> tuple[str, int]:
    """The journal mode and synchronous level of a hub database opened as the hub does."""
    factory = orm.new_session_factory(url, **db_kwargs)
    db = factory()
    try:
        journal = db.execute(text("PRAGMA journal_mode")).scalar()
        synchronous = db.execute(text("PRAGMA synchronous")).scalar()
    finally:
        db.close()
        factory.kw["bind"].dispose()
    return journal, synchronous


def test_a_local_hubs_database_commits_without_waiting_for_the_disk(tmp_path: Path) -> None:
    c = Config()
    configure(c, state_dir=str(tmp_path / "state"))
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert hub_pragmas(url, c.JupyterHub.db_kwargs) == ("wal", 1)  # 1: NORMAL
    assert hub_pragmas(f"sqlite:///{tmp_path / 'plain.sqlite'}", {}) == ("delete", 2)  # FULL


def test_a_kubernetes_hubs_database_keeps_sqlites_defaults(tmp_path: Path) -> None:
    c = Config()
    configure(c, spawner="kube", state_dir=str(tmp_path / "state"))
    assert c.JupyterHub.db_kwargs[WAL_ARG] is False  # its file may be on a network volume
    assert hub_pragmas(f"sqlite:///{tmp_path / 'hub.sqlite'}", c.JupyterHub.db_kwargs) == (
        "delete",
        2,
    )


def test_the_services_store_commits_without_waiting_for_the_disk(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'hub_viz.sqlite'}")
    with store.session() as db:
        found = (
            db.execute(text("PRAGMA journal_mode")).scalar(),
            db.execute(text("PRAGMA synchronous")).scalar(),
        )
    store.close()
    assert found == ("wal", 1)


@pytest.mark.parametrize("journal", ["WAL", "PERSIST", "TRUNCATE"])
def test_sqlite_gives_its_side_files_the_database_files_mode(tmp_path: Path, journal: str) -> None:
    db = tmp_path / "db.sqlite"
    make_private(db)
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA journal_mode={journal}")
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    found = modes(tmp_path, "db.sqlite")
    con.close()
    assert len(found) > 1, found  # the side files exist (-wal and -shm, or -journal)
    assert set(found.values()) == {0o600}, {k: oct(v) for k, v in found.items()}


def test_an_existing_readable_store_and_its_side_files_are_made_private(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "old.sqlite"
    for name in ("old.sqlite", "old.sqlite-wal", "old.sqlite-shm"):
        (tmp_path / name).write_bytes(b"")
        os.chmod(tmp_path / name, 0o644)
    with caplog.at_level(logging.WARNING):
        Store(f"sqlite:///{db}").close()
    assert set(modes(tmp_path, "old.sqlite").values()) == {0o600}
    assert f"Made {db} private (mode 600, was 644)" in caplog.text


def test_secrets_are_private_when_made_and_made_private_again(tmp_path: Path) -> None:
    key, public = ensure_key_pair(tmp_path / "signing.pem")
    secret = tmp_path / "embed_secret"
    load_secret(secret)
    assert (mode(key), mode(secret), mode(public)) == (0o600, 0o600, 0o644)
    for path in (key, secret):
        os.chmod(path, 0o644)  # e.g. copied in from a backup
    ensure_key_pair(key)
    load_secret(secret)
    assert (mode(key), mode(secret)) == (0o600, 0o600)


def test_only_sqlite_files_are_touched() -> None:
    assert sqlite_file("sqlite:////srv/hub/jupyterhub.sqlite") == Path("/srv/hub/jupyterhub.sqlite")
    assert sqlite_file("sqlite:///jupyterhub.sqlite") == Path("jupyterhub.sqlite")
    for url in (
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql://u:p@db/hub",
        "sqlite:///file:hub?mode=ro&uri=true",
    ):
        assert sqlite_file(url) is None, url
