"""warm starts: preheated kernels, per-viewer warm pools

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.add_column(
            sa.Column("warm_kernels", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("warm_pool", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "warm_instances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "dashboard_id",
            sa.Integer(),
            sa.ForeignKey("dashboards.id", ondelete="SET NULL", name="fk_warm_instances_dashboard"),
            nullable=True,
        ),
        sa.Column("server_name", sa.String(30), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("spec_digest", sa.String(64), nullable=False, server_default=""),
        sa.Column("viewer", sa.String(255), nullable=True),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("claimed", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("server_name", name="uq_warm_instances_server_name"),
    )
    op.create_index("ix_warm_instances_dashboard_id", "warm_instances", ["dashboard_id"])
    op.create_index("ix_warm_instances_state", "warm_instances", ["state"])
    op.create_index("ix_warm_instances_viewer", "warm_instances", ["viewer"])


def downgrade() -> None:
    op.drop_table("warm_instances")
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.drop_column("warm_pool")
        batch_op.drop_column("warm_kernels")
