"""Inbound messages stored and not handled yet: their turn failed, or an earlier message
of the same person's is still waiting (bot/services/unhandled/)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow


class UnhandledInbound(Base):
    """One stored inbound message still to be handled, tried again at `next_at` in its
    person's order; `gave_up_at` once it failed too often (then only a command retries it).
    The address is here because a new person's first message has no contact yet."""

    __tablename__ = "inbound_unhandled"
    __table_args__ = (Index("ix_inbound_unhandled_address", "channel", "address"),)

    id: Mapped[int] = mapped_column(
        BigId, ForeignKey("inbound_messages.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    # The contact the address has, once it has one: how erasure finds these rows.
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    language_hint: Mapped[str | None] = mapped_column(String(16))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # The last failure's exception type: never its message, which may quote the text.
    failure: Mapped[str | None] = mapped_column(String(64))
    kept_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_at: Mapped[datetime] = mapped_column(default=utcnow)
    gave_up_at: Mapped[datetime | None]
