"""outbox rows may expire: time-bound messages are never sent late

Revision ID: 0009_outbox_expiry
Revises: 0008_outbox_pending_indexes
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0009_outbox_expiry"
down_revision = "0008_outbox_pending_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
