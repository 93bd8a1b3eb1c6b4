"""Erasure: when a participant's data was erased, and STOPs that outlive erasure

Revision ID: 0013_erasure
Revises: 0012_merge
"""

from alembic import op
import sqlalchemy as sa
import store.models


revision = "0013_erasure"
down_revision = "0012_merge"
branch_labels = None
depends_on = None


# PostgreSQL's ANALYZE keeps sampled values of each column (a number, a message) in the
# pg_statistic catalog, where erasure cannot reach them: these columns are never sampled.
# Nothing looks them up by anything but a unique index, so the planner loses nothing.
UNSAMPLED = {
    "contacts": ("address",),
    "inbound_messages": ("text", "button", "provider_id"),
    "outbox": ("text", "address", "buttons", "provider_id", "error"),
    "pool_entries": ("external_id", "telegram_handle", "household_id", "attributes"),
    "participants": ("state",),
    "organisers": ("name", "telegram_id", "phone"),
    "broadcast_previews": ("text",),
    "calendar_jobs": ("payload",),
}


def _statistics(target: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in UNSAMPLED.items():
        for column in columns:
            op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" SET STATISTICS {target}')


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", store.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "opt_out_marks",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )
    _statistics(0)


def downgrade() -> None:
    _statistics(-1)
    op.drop_table("opt_out_marks")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
