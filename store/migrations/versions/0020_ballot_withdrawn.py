"""ballot_roll.withdrawn: a voter who withdrew after voting (their vote stays counted)

Revision ID: 0020_ballot_withdrawn
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

revision = "0020_ballot_withdrawn"
down_revision = "0019_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ballot_roll") as batch:
        batch.add_column(
            sa.Column("withdrawn", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )


def downgrade() -> None:
    with op.batch_alter_table("ballot_roll") as batch:
        batch.drop_column("withdrawn")
