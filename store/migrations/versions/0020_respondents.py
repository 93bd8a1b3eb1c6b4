"""respondents registered outside the chat

Revision ID: 0020_respondents
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0020_respondents"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outside_registrations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("consent_ref", sa.String(length=128), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("source_line", sa.Integer(), nullable=True),
        sa.Column("imported_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id"),
    )


def downgrade() -> None:
    op.drop_table("outside_registrations")
