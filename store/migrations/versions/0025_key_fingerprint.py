"""the fingerprint of the secret key the database was first used with

Revision ID: 0025_key_fingerprint
Revises: 0024_unhandled_inbound
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0025_key_fingerprint"
down_revision = "0024_unhandled_inbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_fingerprint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("key_fingerprint")
