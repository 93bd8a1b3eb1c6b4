"""Deliberative polls: their definitions, their waves (when each is due, claimed once),
who was asked in a wave and how far they got, and the answers.

An answer names its respondent by a pseudonym of the poll's own (an HMAC of the
participant id under the server secret, bot/services/polls/pseudonyms.py): the same
person's answers pair across waves, and the answers table alone names nobody.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

PENDING, OPEN, CLOSED = "pending", "open", "closed"


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    # The checked definition (flows.poll_spec.plain): title, waves, questions.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PollWave(Base):
    """One wave of a poll: when it is due (kept in line with the calendar while pending),
    and its state. Opening takes the row for update, so one instance opens it."""

    __tablename__ = "poll_waves"

    poll_id: Mapped[str] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    wave_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # its place in the file
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    due_at: Mapped[datetime | None]  # None: sent by hand (`concorder poll send`)
    opened_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]


class PollRoll(Base):
    """Who a wave asks (the confirmed panel when it opened), and how far they got."""

    __tablename__ = "poll_roll"
    __table_args__ = (
        ForeignKeyConstraint(["poll_id", "wave_id"], ["poll_waves.poll_id", "poll_waves.wave_id"]),
        Index("ix_poll_roll_remind", "poll_id", "wave_id", "finished", "reminded"),
    )

    poll_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    wave_id: Mapped[str] = mapped_column(String(24), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    asked: Mapped[bool] = mapped_column(Boolean, default=False)
    asked_at: Mapped[datetime | None]
    answered: Mapped[int] = mapped_column(Integer, default=0)  # questions answered or skipped
    finished: Mapped[bool] = mapped_column(Boolean, default=False)
    reminded: Mapped[int] = mapped_column(Integer, default=0)


class PollAnswer(Base):
    """One answer: a question of a wave, by pseudonym; `value` is "1".."5", an option key,
    or None for SKIP. One per question, wave and respondent, whatever arrives at once."""

    __tablename__ = "poll_answers"
    __table_args__ = (
        Index(
            "uq_poll_answers_once", "poll_id", "wave_id", "question_id", "respondent", unique=True
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    poll_id: Mapped[str] = mapped_column(ForeignKey("polls.id"))
    wave_id: Mapped[str] = mapped_column(String(24))
    question_id: Mapped[str] = mapped_column(String(24))
    respondent: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(24))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
