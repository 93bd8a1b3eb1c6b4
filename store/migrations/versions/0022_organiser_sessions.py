"""the organiser page's sign-in tokens and links, and its sessions

Revision ID: 0022_organiser_sessions
Revises: 0021_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0022_organiser_sessions"
down_revision = "0021_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "organiser_signins",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organiser_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organiser_id"], ["organisers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("ix_organiser_signins_organiser_id", "organiser_signins", ["organiser_id"])
    op.create_table(
        "organiser_sessions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("organiser_id", BIG_ID, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organiser_id"], ["organisers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index("ix_organiser_sessions_organiser_id", "organiser_sessions", ["organiser_id"])


def downgrade() -> None:
    op.drop_table("organiser_sessions")
    op.drop_table("organiser_signins")
