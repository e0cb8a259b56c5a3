"""dashboards, deployments and opens

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=30), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("framework", sa.String(length=50), nullable=False),
        sa.Column("source_type", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("git_ref", sa.String(length=200), nullable=False),
        sa.Column("entry", sa.String(length=500), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("share_users", sa.JSON(), nullable=False),
        sa.Column("share_groups", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(length=100), nullable=False),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("thumbnail_updated", sa.DateTime(), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "slug", name="uq_dashboards_owner_slug"),
    )
    with op.batch_alter_table("dashboards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboards_owner"), ["owner"], unique=False)

    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=True),
        sa.Column("dashboard_ref", sa.String(length=300), nullable=False),
        sa.Column("server_owner", sa.String(length=255), nullable=False),
        sa.Column("server_name", sa.String(length=30), nullable=False),
        sa.Column("started_by", sa.String(length=255), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("stopped", sa.DateTime(), nullable=True),
        sa.Column("stopped_by", sa.String(length=255), nullable=False),
        sa.Column("stop_reason", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["dashboard_id"], ["dashboards.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployments_dashboard_id"), ["dashboard_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deployments_stopped"), ["stopped"], unique=False)

    op.create_table(
        "opens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=True),
        sa.Column("dashboard_ref", sa.String(length=300), nullable=False),
        sa.Column("viewer", sa.String(length=255), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dashboard_id"], ["dashboards.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("opens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_opens_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_opens_dashboard_id"), ["dashboard_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("opens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opens_dashboard_id"))
        batch_op.drop_index(batch_op.f("ix_opens_at"))

    op.drop_table("opens")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deployments_stopped"))
        batch_op.drop_index(batch_op.f("ix_deployments_dashboard_id"))

    op.drop_table("deployments")
    with op.batch_alter_table("dashboards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboards_owner"))

    op.drop_table("dashboards")
