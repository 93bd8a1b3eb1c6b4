"""Join the audit checkpoints and erasure.

Revision ID: 0014_merge
Revises: 0013_checkpoints, 0013_erasure
"""

revision = "0014_merge"
down_revision = ("0013_checkpoints", "0013_erasure")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
