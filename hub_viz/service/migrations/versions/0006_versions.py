"""dashboard versions, branch following and usage per version

Revision ID: 0006
Revises: 0005

Every existing dashboard gets version 1 from its current fields (no commit or
snapshot: it runs its files as before until the author publishes a new version).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RUN_COLUMNS = (
    "framework",
    "entry",
    "args",
    "mode",
    "profile",
    "resources",
    "warm_kernels",
    "source_type",
    "source",
    "git_ref",
)


def upgrade() -> None:
    op.create_table(
        "dashboard_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "dashboard_id",
            sa.Integer(),
            sa.ForeignKey("dashboards.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("commit", sa.String(40), nullable=False),
        sa.Column("snapshot", sa.String(64), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("dashboard_id", "number", name="uq_dashboard_versions_number"),
    )
    op.create_index("ix_dashboard_versions_dashboard_id", "dashboard_versions", ["dashboard_id"])
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.add_column(sa.Column("current_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("commit", sa.String(40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("snapshot", sa.String(64), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("follow_branch", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("auto_current", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("hook_id", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("checked", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_dashboards_hook_id", ["hook_id"])
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("preview", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("opens") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=True))

    # version 1 of every dashboard there is: its fields as they are
    conn = op.get_bind()
    dashboards = sa.table(
        "dashboards",
        sa.column("id", sa.Integer()),
        sa.column("owner", sa.String()),
        sa.column("created", sa.DateTime()),
        sa.column("updated", sa.DateTime()),
        sa.column("current_version", sa.Integer()),
        *(
            sa.column(c, sa.JSON() if c in ("args", "resources") else sa.String())
            for c in RUN_COLUMNS
        ),
    )
    versions = sa.table(
        "dashboard_versions",
        sa.column("dashboard_id", sa.Integer()),
        sa.column("number", sa.Integer()),
        sa.column("spec", sa.JSON()),
        sa.column("commit", sa.String()),
        sa.column("snapshot", sa.String()),
        sa.column("environment", sa.JSON()),
        sa.column("origin", sa.String()),
        sa.column("created_by", sa.String()),
        sa.column("created", sa.DateTime()),
    )
    rows = conn.execute(sa.select(dashboards)).mappings().all()
    for row in rows:
        spec = {c: row[c] for c in RUN_COLUMNS}
        spec["warm_kernels"] = int(spec["warm_kernels"] or 0)
        conn.execute(
            versions.insert().values(
                dashboard_id=row["id"],
                number=1,
                spec=spec,
                commit="",
                snapshot="",
                environment={},
                origin="publish",
                created_by=row["owner"],
                created=row["updated"] or row["created"],
            )
        )
    conn.execute(sa.update(dashboards).values(current_version=1))
    with op.batch_alter_table("dashboards") as batch_op:
        for name in ("commit", "snapshot", "follow_branch", "auto_current"):
            batch_op.alter_column(name, server_default=None)
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.alter_column("preview", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("opens") as batch_op:
        batch_op.drop_column("version")
    with op.batch_alter_table("deployments") as batch_op:
        batch_op.drop_column("preview")
        batch_op.drop_column("version")
    with op.batch_alter_table("dashboards") as batch_op:
        batch_op.drop_constraint("uq_dashboards_hook_id", type_="unique")
        for name in (
            "checked",
            "hook_id",
            "auto_current",
            "follow_branch",
            "snapshot",
            "commit",
            "current_version",
        ):
            batch_op.drop_column(name)
    op.drop_index("ix_dashboard_versions_dashboard_id", table_name="dashboard_versions")
    op.drop_table("dashboard_versions")
