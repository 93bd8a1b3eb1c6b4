"""Outbox: attempts that ended with no outcome (processing failed outside the send, or the
lease ran out), so a message that keeps failing that way is given up

Revision ID: 0015_outbox_faults
Revises: 0014_merge
"""

from alembic import op
import sqlalchemy as sa


revision = "0015_outbox_faults"
down_revision = "0014_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("faults", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("faults")
