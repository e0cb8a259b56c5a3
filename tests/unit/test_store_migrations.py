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


def test_versions_migration_gives_every_dashboard_version_one(tmp_path: Path) -> None:
    """A store of the schema before versions (0005), with a dashboard, runs and opens:
    the upgrade makes version 1 of it from its fields, current, and leaves the rest."""
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    command.upgrade(alembic_config(url), "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dashboards (id, owner, slug, title, description, framework, "
                "source_type, source, git_ref, entry, args, mode, visibility, share_users, "
                "share_groups, profile, keep_warm, resources, warm_kernels, warm_pool, "
                "created, updated) VALUES (7, 'ana', 'sales', 'Sales', '', 'dash', 'git', "
                "'https://example.org/r.git', 'main', 'app.py', '[\"--x\"]', 'shared', "
                "'all', '[]', '[]', '', '[]', '{\"cpu\": 1}', 0, 0, '2026-01-01 10:00', "
                "'2026-01-02 10:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO deployments (dashboard_id, dashboard_ref, server_owner, "
                "server_name, started_by, started, stopped_by, stop_reason) VALUES "
                "(7, 'ana/sales', 'ana', 'sales', 'ana', '2026-01-01 10:00', '', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO opens (dashboard_id, dashboard_ref, viewer, at) "
                "VALUES (7, 'ana/sales', 'bo', '2026-01-01 10:01')"
            )
        )
    upgrade(url)
    with engine.connect() as conn:
        version = conn.execute(
            text(
                'SELECT dashboard_id, number, spec, "commit", snapshot, origin, created_by '
                "FROM dashboard_versions"
            )
        ).one()
        dashboard = conn.execute(
            text('SELECT current_version, "commit", follow_branch, hook_id FROM dashboards')
        ).one()
        runs = conn.execute(text("SELECT version, preview FROM deployments")).all()
        opens = conn.execute(text("SELECT version FROM opens")).all()
    import json

    assert version[:2] == (7, 1)
    assert json.loads(version[2]) == {
        "framework": "dash",
        "entry": "app.py",
        "args": ["--x"],
        "mode": "shared",
        "profile": "",
        "resources": {"cpu": 1},
        "warm_kernels": 0,
        "source_type": "git",
        "source": "https://example.org/r.git",
        "git_ref": "main",
    }
    assert version[3:] == ("", "", "publish", "ana")
    assert tuple(dashboard) == (1, "", 0, None)
    assert [tuple(r) for r in runs] == [(None, 0)] and [tuple(r) for r in opens] == [(None,)]
    # and back down to 0005 keeps the dashboard
    command.downgrade(alembic_config(url), "0005")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT slug FROM dashboards")).scalar() == "sales"
