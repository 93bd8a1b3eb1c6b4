"""shared send limits remember the send times reserved in the last window

Revision ID: 0020_send_window
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

revision = "0020_send_window"
down_revision = "0019_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_limits") as batch:
        batch.add_column(sa.Column("sends", sa.Text(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("delivery_limits") as batch:
        batch.drop_column("sends")
