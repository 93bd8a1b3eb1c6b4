"""Join the small-group tables and the outbox fault counts.

Revision ID: 0016_merge
Revises: 0015_groups, 0015_outbox_faults
"""

revision = "0016_merge"
down_revision = ("0015_groups", "0015_outbox_faults")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
