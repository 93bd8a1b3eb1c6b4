"""SMS previews carry a one-time code; wrong codes lock an organiser's SMS commands

Revision ID: 0009_organiser_codes
Revises: 0008_outbox_pending_indexes
"""

from alembic import op
import sqlalchemy as sa
import store.models


revision = "0009_organiser_codes"
down_revision = "0008_outbox_pending_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("sms_locked_until", store.models.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("broadcast_previews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code_hash", sa.String(length=96), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcast_previews", schema=None) as batch_op:
        batch_op.drop_column("code_hash")
    with op.batch_alter_table("organisers", schema=None) as batch_op:
        batch_op.drop_column("sms_locked_until")
        batch_op.drop_column("sms_failures")
