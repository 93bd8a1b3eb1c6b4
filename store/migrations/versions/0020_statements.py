"""statements for the opinion map and each participant's answer to them

Revision ID: 0020_statements
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0020_statements"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "statements",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_statements_participant_id", "statements", ["participant_id"])
    op.create_table(
        "statement_votes",
        sa.Column("statement_id", BigId, nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("vote", sa.SmallInteger(), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["statement_id"], ["statements.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("statement_id", "participant_id"),
    )


def downgrade() -> None:
    op.drop_table("statement_votes")
    op.drop_index("ix_statements_participant_id", table_name="statements")
    op.drop_table("statements")
