"""merge the public results page and the organiser page's sign-in

Revision ID: 0023_merge
Revises: 0022_results_page, 0022_organiser_sessions
"""

revision = "0023_merge"
down_revision = ("0022_results_page", "0022_organiser_sessions")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
