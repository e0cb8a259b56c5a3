"""keep-warm windows and embed grants

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.add_column(sa.Column("keep_warm", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "embed_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=True),
        sa.Column("revoked", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["dashboard_id"], ["dashboards.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("embed_grants") as batch_op:
        batch_op.create_index("ix_embed_grants_dashboard_id", ["dashboard_id"], unique=False)


def downgrade() -> None:
    op.drop_table("embed_grants")
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.drop_column("keep_warm")
