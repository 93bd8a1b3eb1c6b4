"""send-rate limits shared by every dispatcher on one database

Revision ID: 0011_shared_limits
Revises: 0010_merge
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_shared_limits"
down_revision = "0010_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_limits",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("tat", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("delivery_limits")
