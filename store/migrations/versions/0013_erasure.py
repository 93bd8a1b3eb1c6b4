"""Erasure: when a participant's data was erased, and STOPs that outlive erasure

Revision ID: 0013_erasure
Revises: 0012_merge
"""

from alembic import op
import sqlalchemy as sa
import store.models


revision = "0013_erasure"
down_revision = "0012_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("erased_at", store.models.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "opt_out_marks",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("opt_out_marks")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_column("erased_at")
