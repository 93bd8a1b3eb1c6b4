"""Recruitment tables: the pool, invitations, consents, registration answers, selection.

One assembly per database. Every row points at a pseudonymous Participant; phone numbers
live only in Contact, Telegram handles only here (they are not a chat id we can write to).
The funnel: pool entry -> invitation (invited, reminded, ...) -> consent -> registration
answers -> selection (written by the draw) -> confirmed or declined.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, Participant, utcnow

# Invitation.status, in funnel order. "failed": nobody could be reached (no usable contact).
INVITED = "invited"
REMINDED = "reminded"
RESPONDED = "responded"  # replied (or opened the Telegram link) and is going through consent
CONSENTED = "consented"
REGISTERED = "registered"
NOT_INTERESTED = "not_interested"
LAPSED = "lapsed"
WITHDRAWN = "withdrawn"
FAILED = "failed"
INVITATION_STATUSES = (
    INVITED,
    REMINDED,
    RESPONDED,
    CONSENTED,
    REGISTERED,
    NOT_INTERESTED,
    LAPSED,
    WITHDRAWN,
    FAILED,
)
AWAITING_REPLY = (INVITED, REMINDED)

# Selection.status. The draw writes "selected" and "reserve"; replies make the rest.
SELECTED = "selected"
RESERVE = "reserve"
CONFIRMED = "confirmed"
DECLINED = "declined"
SELECTION_STATUSES = (SELECTED, RESERVE, CONFIRMED, DECLINED)


def hash_code(code: str) -> str:
    """What is stored of a one-time invitation code: its SHA-256, never the code itself."""
    return hashlib.sha256(code.encode()).hexdigest()


class PoolEntry(Base):
    """One person of the recruitment pool (an address list row), merged over duplicates."""

    __tablename__ = "pool_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), unique=True)
    # The organiser's own reference for the row, if the file has one (unique when given).
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Lower-case, without '@'. A handle is not a chat id: such people get a link to open.
    telegram_handle: Mapped[str | None] = mapped_column(String(64), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    household_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Attributes known before anyone is contacted (e.g. {"region": "north"}).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source_line: Mapped[int | None] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invitation(Base):
    """The one invitation of a pool entry: its one-time code (hashed) and its funnel state."""

    __tablename__ = "invitations"
    __table_args__ = (Index("ix_invitations_status_remind", "status", "remind_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # How it went out: "sms" (with the Telegram link inside), "telegram", or "letter"
    # (handle only: the link is in the export file for a letter or QR code).
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=INVITED)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    remind_at: Mapped[datetime | None]
    lapse_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    consented_at: Mapped[datetime | None]
    registered_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # not interested, lapsed or withdrawn
    # When a registered person not drawn was told the outcome of the draw.
    outcome_sent_at: Mapped[datetime | None]
    # The Telegram contact that used the code: a second account is refused.
    bound_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    bound_at: Mapped[datetime | None]


class Consent(Base):
    """Consent given (or withdrawn) to the assembly's data text, exactly which version."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    text_version: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(16))
    given_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]


class RegistrationAnswer(Base):
    """One answer to one registration question: the option key, never free text."""

    __tablename__ = "registration_answers"
    __table_args__ = (
        UniqueConstraint("participant_id", "question_id", name="uq_registration_answer"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    question_id: Mapped[str] = mapped_column(String(64))
    answer: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime]


class Selection(Base):
    """Panel membership after a draw. The draw writes selected/reserve rows (one per
    person); confirmation replies turn them into confirmed/declined."""

    __tablename__ = "selections"
    __table_args__ = (Index("ix_selections_status", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), unique=True)
    draw_id: Mapped[str] = mapped_column(String(64))  # names the draw that made the row
    status: Mapped[str] = mapped_column(String(16))
    # Reserve order: 1 is asked first when a place opens. None for the selected.
    reserve_rank: Mapped[int | None] = mapped_column(Integer)
    selected_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]
    confirm_by: Mapped[datetime | None]
    responded_at: Mapped[datetime | None]
    # Why a row is declined: "declined" (they said so), "no_reply", "withdrawn".
    reason: Mapped[str | None] = mapped_column(String(32))


async def draw_candidates(session: AsyncSession) -> list[dict[str, Any]]:
    """Everyone registered and not withdrawn, with household and every known feature:
    pool attributes overlaid by registration answers. What a stratified draw reads."""
    rows = (
        await session.execute(
            select(Invitation.participant_id, PoolEntry.household_id, PoolEntry.attributes)
            .join(PoolEntry, PoolEntry.participant_id == Invitation.participant_id)
            # Someone erased is no longer a candidate: their answers are gone.
            .join(Participant, Participant.id == Invitation.participant_id)
            .where(Invitation.status == REGISTERED, Participant.erased_at.is_(None))
            .order_by(Invitation.participant_id)
        )
    ).all()
    answers: dict[str, dict[str, str]] = {}
    for pid, question, answer in (
        await session.execute(
            select(
                RegistrationAnswer.participant_id,
                RegistrationAnswer.question_id,
                RegistrationAnswer.answer,
            )
        )
    ).all():
        answers.setdefault(pid, {})[question] = answer
    return [
        {
            "participant_id": pid,
            "household_id": household,
            "features": {**(attributes or {}), **answers.get(pid, {})},
        }
        for pid, household, attributes in rows
    ]
