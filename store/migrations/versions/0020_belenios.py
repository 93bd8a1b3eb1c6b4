"""belenios: ballots run as Belenios elections (files, credentials while open, ballots)

Revision ID: 0020_belenios
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

revision = "0020_belenios"
down_revision = "0019_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "belenios_elections",
        sa.Column("ballot_id", sa.String(length=24), nullable=False),
        sa.Column("uuid", sa.String(length=32), nullable=False),
        sa.Column("directory", sa.String(length=500), nullable=False),
        sa.Column("trustees", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.PrimaryKeyConstraint("ballot_id"),
    )
    op.create_table(
        "belenios_credentials",
        sa.Column("ballot_id", sa.String(length=24), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("private", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("ballot_id", "participant_id"),
    )
    op.create_table(
        "belenios_ballots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ballot_id", sa.String(length=24), nullable=False),
        sa.Column("ballot", sa.Text(), nullable=False),
        sa.Column("tracker", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_belenios_ballots_ballot_id", "belenios_ballots", ["ballot_id"])


def downgrade() -> None:
    op.drop_table("belenios_ballots")
    op.drop_table("belenios_credentials")
    op.drop_table("belenios_elections")
