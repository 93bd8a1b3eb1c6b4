"""small-group conversation: table prompts, contributions, members' marks, timed work

Revision ID: 0017_deliberation
Revises: 0016_merge
"""

from alembic import op
import sqlalchemy as sa

from store.models import UTCDateTime

revision = "0017_deliberation"
down_revision = "0016_merge"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "table_prompts",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("table_no", sa.Integer(), nullable=False),
        sa.Column("prompt_key", sa.String(length=64), nullable=False),
        sa.Column("texts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fair_share", sa.Integer(), nullable=False),
        sa.Column("close_missing", sa.Integer(), nullable=False),
        sa.Column("digest_minutes", sa.Integer(), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        _at("opened_at", False),
        sa.Column("opened_by", sa.String(length=32), nullable=False),
        _at("closes_at", False),
        _at("nudge_at"),
        _at("paused_at"),
        _at("closed_at"),
        sa.Column("close_reason", sa.String(length=32), nullable=True),
        _at("limit_lifted_at"),
        sa.Column("relayed_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "round", "table_no", "prompt_key", name="uq_table_prompt"),
    )
    op.create_index("ix_table_prompts_run_id", "table_prompts", ["run_id"])
    op.create_index("ix_table_prompts_status", "table_prompts", ["status", "round"])
    op.create_table(
        "contributions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("table_prompt_id", BIG_ID, nullable=False),
        sa.Column("run_id", sa.String(length=16), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("table_no", sa.Integer(), nullable=False),
        sa.Column("prompt_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=True),
        sa.Column("letter", sa.String(length=4), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        _at("at", False),
        sa.Column("held", sa.Boolean(), nullable=False),
        _at("relayed_at"),
        sa.Column("relay_no", sa.Integer(), nullable=True),
        _at("hidden_at"),
        sa.Column("hidden_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["table_prompt_id"], ["table_prompts.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contributions_prompt", "contributions", ["table_prompt_id", "id"])
    op.create_index("ix_contributions_participant_id", "contributions", ["participant_id"])
    op.create_index(
        "ix_contributions_pending",
        "contributions",
        ["table_prompt_id"],
        postgresql_where=sa.text("relayed_at IS NULL"),
        sqlite_where=sa.text("relayed_at IS NULL"),
    )
    op.create_table(
        "prompt_members",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("table_prompt_id", BIG_ID, nullable=False),
        sa.Column("participant_id", sa.String(length=16), nullable=False),
        _at("nudged_at"),
        sa.Column("relayed_upto", BIG_ID, nullable=False),
        sa.ForeignKeyConstraint(["table_prompt_id"], ["table_prompts.id"]),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_prompt_id", "participant_id", name="uq_prompt_member"),
    )
    op.create_index("ix_prompt_members_table_prompt_id", "prompt_members", ["table_prompt_id"])
    op.create_index("ix_prompt_members_participant_id", "prompt_members", ["participant_id"])
    op.create_table(
        "deliberation_jobs",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        _at("due_at", False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("table_prompt_id", BIG_ID, nullable=True),
        sa.Column("participant_id", sa.String(length=16), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        _at("created_at", False),
        _at("done_at"),
        sa.Column("result", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["table_prompt_id"], ["table_prompts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_deliberation_jobs_due", "deliberation_jobs", ["status", "due_at"])
    op.create_index("ix_deliberation_jobs_participant_id", "deliberation_jobs", ["participant_id"])


def downgrade() -> None:
    op.drop_table("deliberation_jobs")
    op.drop_table("prompt_members")
    op.drop_table("contributions")
    op.drop_table("table_prompts")
