"""Organisers, their broadcasts, and the chat previews waiting for SEND or DISCARD."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow


class Organiser(Base):
    """Someone allowed to use organiser commands, known by a Telegram id and/or a phone."""

    __tablename__ = "organisers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(120))
    # Telegram user id: in a private chat it is also the chat id the bot sees.
    telegram_id: Mapped[str | None] = mapped_column(String(20), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)  # E.164
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A sender number can be forged: wrong SEND codes by SMS are counted, and enough of
    # them lock this organiser's SMS commands until `sms_locked_until`.
    sms_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sms_locked_until: Mapped[datetime | None]


class Broadcast(Base):
    """One message to an audience: free text, or a template rendered per participant."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_due", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    text: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    audience: Mapped[str] = mapped_column(String(80))
    # Urgent broadcasts ignore quiet hours; the others wait for each participant's morning.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    scheduled_at: Mapped[datetime | None]  # None: at once
    # scheduled -> queued (rows in the outbox) | discarded
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("organisers.id", ondelete="SET NULL")
    )  # None: the command line
    origin: Mapped[str] = mapped_column(String(16), default="cli")  # cli | telegram | sms
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]


class BroadcastPreview(Base):
    """A broadcast an organiser typed in chat and was shown back: it waits for SEND."""

    __tablename__ = "broadcast_previews"

    organiser_id: Mapped[int] = mapped_column(
        ForeignKey("organisers.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text)
    audience: Mapped[str] = mapped_column(String(80))
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # as shown in the preview
    origin: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # A preview made by SMS is sent only with the one-time code that went to the
    # organiser's phone: "salt$sha256(salt:code)", never the code itself.
    code_hash: Mapped[str | None] = mapped_column(String(96))
