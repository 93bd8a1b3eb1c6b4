"""the public results page: the open data package as published on the web

Revision ID: 0022_results_page
Revises: 0021_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0022_results_page"
down_revision = "0021_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "results_pages",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("package_sha256", sa.String(length=64), nullable=False),
        sa.Column("min_cell", sa.Integer(), nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("published_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("results_pages")
