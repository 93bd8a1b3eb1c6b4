"""Small-group conversation: the prompts opened at each table, what members and
facilitators wrote there, each member's marks in a prompt, and the timed work (opening,
nudges, digests, closing) as rows claimed once.

A table's conversation is one stream of `Contribution` rows in id order: members' messages
and passes, and facilitators' posts. Members are named by seat letter; the text is kept
for the synthesis under the retention rules (store/personal_data.py blanks it on erasure,
the pseudonymous rows stay).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

# TablePrompt.status
OPEN, PAUSED, CLOSED = "open", "paused", "closed"
# Contribution.kind
MESSAGE, PASS, POST = "message", "pass", "post"
# DeliberationJob.kind
JOB_OPEN, JOB_NUDGE, JOB_DIGEST, JOB_CLOSE = "open", "nudge", "digest", "close"
# DeliberationJob.status
PENDING, DONE, CANCELLED = "pending", "done", "cancelled"


class TablePrompt(Base):
    """One prompt open (or once open) at one table of one round of the current allocation."""

    __tablename__ = "table_prompts"
    __table_args__ = (
        UniqueConstraint("run_id", "round", "table_no", "prompt_key", name="uq_table_prompt"),
        Index("ix_table_prompts_status", "status", "round"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(16), index=True)
    round: Mapped[int] = mapped_column(Integer)
    table_no: Mapped[int] = mapped_column(Integer)
    # The [[prompts]] id of the assembly file, or "now-<n>" for one a facilitator opened.
    prompt_key: Mapped[str] = mapped_column(String(64))
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)  # language -> text
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    fair_share: Mapped[int] = mapped_column(Integer, default=3)
    close_missing: Mapped[int] = mapped_column(Integer, default=1)
    digest_minutes: Mapped[int] = mapped_column(Integer, default=5)
    # Minutes the table keeps talking once the closing share has answered.
    grace_minutes: Mapped[int] = mapped_column(Integer, default=2)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    opened_by: Mapped[str] = mapped_column(String(32), default="schedule")
    closes_at: Mapped[datetime]
    nudge_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    close_reason: Mapped[str | None] = mapped_column(String(32))
    # Set once the closing share has answered: the fair-share limit no longer holds, and
    # the prompt closes `grace_minutes` later (or at closes_at, if sooner).
    limit_lifted_at: Mapped[datetime | None]
    # Contributions relayed so far: the next one relayed takes this plus one (relay_no).
    relayed_count: Mapped[int] = mapped_column(Integer, default=0)


class Contribution(Base):
    """One message, PASS or facilitator's post at a table, in the order received.

    `text` is what the member wrote, kept whole for the synthesis (what the others receive
    is scrubbed of addresses); erasure blanks it. `held`: over the fair share, or sent
    while the table was paused, and not yet relayed.
    """

    __tablename__ = "contributions"
    __table_args__ = (
        Index("ix_contributions_prompt", "table_prompt_id", "id"),
        # What is still to relay, found by the relay step without reading the rest.
        Index(
            "ix_contributions_pending",
            "table_prompt_id",
            postgresql_where=text("relayed_at IS NULL"),
            sqlite_where=text("relayed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    table_prompt_id: Mapped[int] = mapped_column(ForeignKey("table_prompts.id"))
    run_id: Mapped[str] = mapped_column(String(16))
    round: Mapped[int] = mapped_column(Integer)
    table_no: Mapped[int] = mapped_column(Integer)
    prompt_key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default=MESSAGE)
    # None for a facilitator's post (letter "*").
    participant_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"), index=True)
    letter: Mapped[str] = mapped_column(String(4))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    text_sha256: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    relayed_at: Mapped[datetime | None]
    # Its place in the order the table received messages (held ones come later than
    # written): digests and REPEAT follow it.
    relay_no: Mapped[int | None] = mapped_column(Integer)
    hidden_at: Mapped[datetime | None]
    hidden_by: Mapped[str | None] = mapped_column(String(64))


class PromptMember(Base):
    """A member's marks in one table prompt: nudged, and how far their digest has gone."""

    __tablename__ = "prompt_members"
    __table_args__ = (
        UniqueConstraint("table_prompt_id", "participant_id", name="uq_prompt_member"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    table_prompt_id: Mapped[int] = mapped_column(ForeignKey("table_prompts.id"), index=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    nudged_at: Mapped[datetime | None]
    # The last contribution id this member has received (at once, or in a digest).
    relayed_upto: Mapped[int] = mapped_column(BigId, default=0)


class DeliberationJob(Base):
    """Timed work of the conversation, claimed once (FOR UPDATE SKIP LOCKED): open a
    scheduled prompt, nudge the silent, send a member's digest, close a prompt."""

    __tablename__ = "deliberation_jobs"
    __table_args__ = (Index("ix_deliberation_jobs_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    # Unique while it matters: "open:<run>:<prompt>", "close:<table prompt id>",
    # "nudge:<table prompt id>", "digest:<table prompt id>:<participant>:<n>".
    key: Mapped[str] = mapped_column(String(160), unique=True)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    table_prompt_id: Mapped[int | None] = mapped_column(ForeignKey("table_prompts.id"))
    participant_id: Mapped[str | None] = mapped_column(String(16), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    result: Mapped[str | None] = mapped_column(String(64))
