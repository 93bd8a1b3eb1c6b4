"""Join the audit sequencer and the shared delivery limits.

Revision ID: 0012_merge
Revises: 0011_audit_sequencer, 0011_shared_limits
"""

revision = "0012_merge"
down_revision = ("0011_audit_sequencer", "0011_shared_limits")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
