"""calendar: due jobs, briefing times and reads, session moves, attendance notices

Revision ID: 0005_calendar
Revises: 0001_core
"""

from alembic import op
import sqlalchemy as sa
import store.models


revision = "0005_calendar"
down_revision = "0001_core"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calendar_jobs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("occurrence", sa.String(length=64), nullable=False),
        sa.Column("due_at", UTC, nullable=False),
        sa.Column("send_at", UTC, nullable=False),
        sa.Column("expires_at", UTC, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.Column("done_at", UTC, nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind", "participant_id", "subject", "occurrence", name="uq_calendar_job"
        ),
    )
    with op.batch_alter_table("calendar_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_jobs_due", ["status", "send_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_calendar_jobs_participant_id"), ["participant_id"], unique=False
        )

    op.create_table(
        "calendar_preferences",
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("briefing_time", sa.String(length=5), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
        ),
        sa.PrimaryKeyConstraint("participant_id"),
    )
    op.create_table(
        "briefing_reads",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("briefing", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("pages_sent", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTC, nullable=False),
        sa.Column("read_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id", "briefing", name="uq_briefing_read"),
    )
    with op.batch_alter_table("briefing_reads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_briefing_reads_participant_id"), ["participant_id"], unique=False
        )

    op.create_table(
        "calendar_session_moves",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("original_start", UTC, nullable=False),
        sa.Column("start", UTC, nullable=False),
        sa.Column("end", UTC, nullable=True),
        sa.Column("moved_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_table(
        "attendance_notices",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("forwarded_at", UTC, nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("attendance_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_attendance_notices_participant_id"), ["participant_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("attendance_notices")
    op.drop_table("calendar_session_moves")
    op.drop_table("briefing_reads")
    op.drop_table("calendar_preferences")
    op.drop_table("calendar_jobs")
