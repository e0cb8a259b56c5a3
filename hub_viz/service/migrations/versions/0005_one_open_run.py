"""one open run per server and per viewer of a dashboard; one claim per viewer

Revision ID: 0005
Revises: 0004

Runs left open twice (a race of older versions) are closed first, keeping the
newest open one, so that the unique indexes can be built.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = "stopped IS NULL"
OPEN_VIEWER = "stopped IS NULL AND viewer IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.add_column(sa.Column("viewer", sa.String(255), nullable=True))
    op.execute(
        "UPDATE deployments SET stopped = CURRENT_TIMESTAMP, stop_reason = 'stopped' "
        "WHERE stopped IS NULL AND id NOT IN (SELECT MAX(id) FROM deployments "
        "WHERE stopped IS NULL GROUP BY server_owner, server_name)"
    )
    op.create_index(
        "uq_deployments_open_server",
        "deployments",
        ["server_owner", "server_name"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.create_index(
        "uq_deployments_open_viewer",
        "deployments",
        ["dashboard_id", "viewer"],
        unique=True,
        sqlite_where=sa.text(OPEN_VIEWER),
        postgresql_where=sa.text(OPEN_VIEWER),
    )
    # a viewer holding two claimed instances of one dashboard keeps the oldest claim; the
    # others stay claimed by nobody (never handed on) until they stop and are removed
    op.execute(
        "UPDATE warm_instances SET viewer = NULL WHERE viewer IS NOT NULL AND id NOT IN ("
        "SELECT MIN(id) FROM warm_instances WHERE viewer IS NOT NULL "
        "GROUP BY dashboard_id, viewer)"
    )
    with op.batch_alter_table("warm_instances") as batch_op:
        batch_op.create_unique_constraint(
            "uq_warm_instances_dashboard_viewer", ["dashboard_id", "viewer"]
        )


def downgrade() -> None:
    with op.batch_alter_table("warm_instances") as batch_op:
        batch_op.drop_constraint("uq_warm_instances_dashboard_viewer", type_="unique")
    op.drop_index("uq_deployments_open_viewer", "deployments")
    op.drop_index("uq_deployments_open_server", "deployments")
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.drop_column("viewer")
