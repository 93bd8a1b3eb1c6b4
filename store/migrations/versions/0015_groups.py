"""small-group tables: allocation runs and seats

Revision ID: 0015_groups
Revises: 0014_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0015_groups"
down_revision = "0014_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "group_runs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.String(length=200), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("input_sha256", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("moves", sa.JSON(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id"),
    )
    op.create_table(
        "group_seats",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("table_no", sa.Integer(), nullable=False),
        sa.Column("letter", sa.String(length=4), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("notified_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["group_runs.run_id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "round", "participant_id", name="uq_group_seats_member"),
        sa.UniqueConstraint("run_id", "round", "table_no", "letter", name="uq_group_seats_letter"),
    )
    op.create_index(
        "uq_group_runs_one_current",
        "group_runs",
        ["status"],
        unique=True,
        sqlite_where=sa.text("status = 'current'"),
        postgresql_where=sa.text("status = 'current'"),
    )
    op.create_index("ix_group_seats_run_id", "group_seats", ["run_id"])
    op.create_index("ix_group_seats_participant_id", "group_seats", ["participant_id"])


def downgrade() -> None:
    op.drop_table("group_seats")
    op.drop_table("group_runs")
