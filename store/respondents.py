"""Respondents who registered outside the chat (paper form, phone call, web form)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.contacts import choose, contacts_of
from store.models import Base, BigId, utcnow

SOURCES = ("paper", "call", "web")  # how the person registered and gave consent


class OutsideRegistration(Base):
    """How and when one person registered outside the chat, and the proof of their
    consent the organisers keep (the form's or the call's reference). Their answers are
    the pool entry's attributes; a phone number, if any, is an SMS contact."""

    __tablename__ = "outside_registrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    consent_ref: Mapped[str | None] = mapped_column(String(128))
    # Only for the organisers to write to; nothing is ever sent to it by the service.
    email: Mapped[str | None] = mapped_column(String(254))
    source_line: Mapped[int | None] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


async def without_contact(session: AsyncSession, participant_ids: list[str]) -> list[str]:
    """Of these people, those the service cannot message (no usable contact, by the one
    contact choice): registered outside the chat with no phone. The organisers tell them."""
    contacts = await contacts_of(session, participant_ids)
    return [pid for pid in participant_ids if choose(contacts.get(pid, ())) is None]
