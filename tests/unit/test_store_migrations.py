"""The migrations build exactly the schema the models describe, and go back down."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from hub_viz.service.store import Base, alembic_config, upgrade


def test_migrated_schema_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
    assert "warm_instances" in inspect(engine).get_table_names()


def test_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    assert set(inspect(create_engine(url)).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert {"dashboards", "deployments", "opens", "embed_grants", "warm_instances"} <= set(
        inspect(create_engine(url)).get_table_names()
    )


def test_runs_left_open_twice_are_closed_before_the_unique_indexes(tmp_path: Path) -> None:
    """A store from before 0005 may hold two open runs of one server (an older race) and
    two claims by one viewer: the upgrade keeps the newest run and the oldest claim."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    command.upgrade(alembic_config(url), "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO deployments (dashboard_ref, server_owner, server_name, started_by, "
                "started, stopped_by, stop_reason) VALUES "
                "('a/lab', 's1', 'lab-1', 's1', '2026-01-01 10:00', '', ''), "
                "('a/lab', 's1', 'lab-1', 's1', '2026-01-01 10:01', '', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO warm_instances (server_name, state, spec_digest, viewer, created) "
                "VALUES ('p-1', 'claimed', '', 's1', '2026-01-01'), "
                "('p-2', 'claimed', '', 's1', '2026-01-01')"
            )
        )
    upgrade(url)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT id, stopped FROM deployments ORDER BY id")).all()
        claims = conn.execute(
            text("SELECT server_name, viewer FROM warm_instances ORDER BY id")
        ).all()
    assert [stopped is None for _, stopped in runs] == [False, True]
    assert claims == [("p-1", "s1"), ("p-2", None)]
