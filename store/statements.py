"""Statements for the opinion map: short sentences participants agree with, disagree with
or pass on, Pol.is-style, and each participant's current answer to each.

A statement is written by the organisers (already approved) or proposed by a participant
(waiting for approval). Once sent, it is asked of the panel; a participant's answer is one
row per statement, replaced by a later answer (the last one counts).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

# Statement.status
PROPOSED, APPROVED, REJECTED = "proposed", "approved", "rejected"
# StatementVote.vote, as Pol.is exports them
AGREE, DISAGREE, PASS = 1, -1, 0


class Statement(Base):
    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    texts: Mapped[dict[str, Any]] = mapped_column(JSON)  # language -> text
    status: Mapped[str] = mapped_column(String(16), default=PROPOSED)
    # The proposer, for a participant's statement; None for the organisers' own.
    participant_id: Mapped[str | None] = mapped_column(ForeignKey("participants.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]  # asked of the panel from then on


class StatementVote(Base):
    """A participant's current answer to a statement: one row, the last answer."""

    __tablename__ = "statement_votes"

    statement_id: Mapped[int] = mapped_column(ForeignKey("statements.id"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    # How many answers this row has taken: a later answer replaces the vote.
    answers: Mapped[int] = mapped_column(Integer, default=1)
    at: Mapped[datetime] = mapped_column(default=utcnow)
