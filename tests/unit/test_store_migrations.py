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
