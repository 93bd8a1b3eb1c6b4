"""one schema history for every feature

Revision ID: 0007_merge
Revises: 0003_recruitment, 0004_draw, 0005_calendar, 0006_organisers
Create Date: 2026-11-25 03:30:40.518312
"""

revision = "0007_merge"
down_revision = ("0003_recruitment", "0004_draw", "0005_calendar", "0006_organisers")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
