"""ballots: definitions, the roll of voters, the votes (no voter, no time)

Revision ID: 0017_ballots
Revises: 0016_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0017_ballots"
down_revision = "0016_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ballots",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("opens_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("closes_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("link_key", sa.String(length=64), nullable=True),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ballot_roll",
        sa.Column("ballot_id", sa.String(length=24), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("voted", sa.Boolean(), nullable=False),
        sa.Column("asked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("ballot_id", "participant_id"),
    )
    op.create_table(
        "ballot_votes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("ballot_id", sa.String(length=24), nullable=False),
        sa.Column("choice", sa.JSON(), nullable=True),
        sa.Column("tracker", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("voter_link", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_ballot_votes_tracker", "ballot_votes", ["ballot_id", "tracker"], unique=True
    )
    op.create_index(
        "uq_ballot_votes_link",
        "ballot_votes",
        ["ballot_id", "voter_link"],
        unique=True,
        sqlite_where=sa.text("voter_link IS NOT NULL"),
        postgresql_where=sa.text("voter_link IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("ballot_votes")
    op.drop_table("ballot_roll")
    op.drop_table("ballots")
