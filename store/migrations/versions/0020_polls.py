"""polls: definitions, waves, who was asked, answers by pseudonym

Revision ID: 0020_polls
Revises: 0019_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0020_polls"
down_revision = "0019_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "poll_waves",
        sa.Column("poll_id", sa.String(length=24), nullable=False),
        sa.Column("wave_id", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("closes_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"]),
        sa.PrimaryKeyConstraint("poll_id", "wave_id"),
    )
    op.create_table(
        "poll_roll",
        sa.Column("poll_id", sa.String(length=24), nullable=False),
        sa.Column("wave_id", sa.String(length=24), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("asked", sa.Boolean(), nullable=False),
        sa.Column("asked_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Boolean(), nullable=False),
        sa.Column("reminded", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["poll_id", "wave_id"], ["poll_waves.poll_id", "poll_waves.wave_id"]
        ),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("poll_id", "wave_id", "participant_id"),
    )
    op.create_index(
        "ix_poll_roll_remind", "poll_roll", ["poll_id", "wave_id", "finished", "reminded"]
    )
    op.create_table(
        "poll_answers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("poll_id", sa.String(length=24), nullable=False),
        sa.Column("wave_id", sa.String(length=24), nullable=False),
        sa.Column("question_id", sa.String(length=24), nullable=False),
        sa.Column("respondent", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=24), nullable=True),
        sa.Column("answered_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_poll_answers_once",
        "poll_answers",
        ["poll_id", "wave_id", "question_id", "respondent"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_poll_answers_once", table_name="poll_answers")
    op.drop_table("poll_answers")
    op.drop_index("ix_poll_roll_remind", table_name="poll_roll")
    op.drop_table("poll_roll")
    op.drop_table("poll_waves")
    op.drop_table("polls")
