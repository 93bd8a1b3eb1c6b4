"""outbox indexes cover only the rows still to send

Revision ID: 0008_outbox_pending_indexes
Revises: 0007_merge
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_outbox_pending_indexes"
down_revision = "0007_merge"
branch_labels = None
depends_on = None

PENDING = "status IN ('queued', 'sending')"


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index(
            "ix_outbox_due",
            ["status", "next_attempt_at"],
            unique=False,
            postgresql_where=sa.text(PENDING),
            sqlite_where=sa.text(PENDING),
        )
        batch_op.create_index(
            "ix_outbox_pending_contact",
            ["contact_id", "seq"],
            unique=False,
            postgresql_where=sa.text(PENDING),
            sqlite_where=sa.text(PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending_contact")
        batch_op.drop_index("ix_outbox_due")
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
