"""inbound messages kept when their turn failed, tried again later in each person's order

Revision ID: 0024_unhandled_inbound
Revises: 0023_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0024_unhandled_inbound"
down_revision = "0023_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbound_unhandled",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("contact_id", BIG_ID, nullable=True),
        sa.Column("language_hint", sa.String(length=16), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(length=64), nullable=True),
        sa.Column("kept_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("gave_up_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["id"], ["inbound_messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inbound_unhandled", schema=None) as batch_op:
        batch_op.create_index("ix_inbound_unhandled_address", ["channel", "address"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_inbound_unhandled_contact_id"), ["contact_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_unhandled", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_unhandled_contact_id"))
        batch_op.drop_index("ix_inbound_unhandled_address")
    op.drop_table("inbound_unhandled")
