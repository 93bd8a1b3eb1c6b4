"""facilitators named per small-group table

Revision ID: 0018_facilitators
Revises: 0017_deliberation
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0018_facilitators"
down_revision = "0017_deliberation"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "facilitator_roles",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("table_no", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "channel", "address", "table_no", "round", name="uq_facilitator_roles_seat"
        ),
    )
    op.create_index("ix_facilitator_roles_address", "facilitator_roles", ["address"])


def downgrade() -> None:
    op.drop_table("facilitator_roles")
