"""the assembly's recommendations and the authority's responses

Revision ID: 0020_recommendations
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0020_recommendations"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recommendations",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("text", sa.JSON(), nullable=False),
        sa.Column("ballot_id", sa.String(length=24), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ballot_id"], ["ballots.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
    )
    op.create_table(
        "recommendation_responses",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("recommendation_id", sa.String(length=24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.JSON(), nullable=False),
        sa.Column("responded_on", sa.Date(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recommendation_id"], ["recommendations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recommendation_id", "version", name="uq_recommendation_response"),
    )
    op.create_index(
        "ix_recommendation_responses_recommendation_id",
        "recommendation_responses",
        ["recommendation_id"],
    )


def downgrade() -> None:
    op.drop_table("recommendation_responses")
    op.drop_table("recommendations")
