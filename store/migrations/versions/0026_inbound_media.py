"""the kind of attachment an inbound message came with

Revision ID: 0026_inbound_media
Revises: 0025_key_fingerprint
"""

from alembic import op
import sqlalchemy as sa

revision = "0026_inbound_media"
down_revision = "0025_key_fingerprint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.add_column(sa.Column("media", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("media")
