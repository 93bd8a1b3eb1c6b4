"""merge ballots with the small-group conversation

Revision ID: 0019_merge
Revises: 0017_ballots, 0018_facilitators
"""

revision = "0019_merge"
down_revision = ("0017_ballots", "0018_facilitators")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
