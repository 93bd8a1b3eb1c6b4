"""join the hardening branches of the schema history

Revision ID: 0010_merge
Revises: 0009_invitation_secrets, 0009_outbox_expiry, 0009_organiser_codes
"""

revision = "0010_merge"
down_revision = ("0009_invitation_secrets", "0009_outbox_expiry", "0009_organiser_codes")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
