"""merge the features built beside each other after 0019: the shared send window, polls,
statements, recommendations, outside respondents, withdrawn voters and Belenios ballots

Revision ID: 0021_merge
Revises: 0020_send_window, 0020_polls, 0020_statements, 0020_recommendations,
    0020_respondents, 0020_ballot_withdrawn, 0020_belenios
"""

revision = "0021_merge"
down_revision = (
    "0020_send_window",
    "0020_polls",
    "0020_statements",
    "0020_recommendations",
    "0020_respondents",
    "0020_ballot_withdrawn",
    "0020_belenios",
)
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
