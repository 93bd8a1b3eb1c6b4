"""Core tables. Feature tables live in their own modules and share `Base`."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# SQLite only autoincrements INTEGER primary keys; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_participant_id() -> str:
    """A pseudonymous id: what the audit trail and open data show instead of a person."""
    return "P" + secrets.token_hex(6).upper()


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Participant(Base):
    """A person, whatever channels they use. Holds the conversation state."""

    __tablename__ = "participants"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_participant_id)
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    erase_requested_at: Mapped[datetime | None]
    # Set when the person's data was erased (store/personal_data.py); the row stays, as the
    # pseudonym the draw, the consents and the audit chain name.
    erased_at: Mapped[datetime | None]
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(back_populates="participant")


class Contact(Base):
    """One way to reach a participant: an E.164 number for SMS, a chat id for Telegram."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address", name="uq_contact_address"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    # Set when the channel says the person can no longer be reached here (blocked bot).
    unreachable_at: Mapped[datetime | None]
    # Set when the carrier reports an opt-out (Twilio 21610) for this number.
    opted_out_at: Mapped[datetime | None]
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The next outbox sequence number for this contact: keeps messages in order.
    next_seq: Mapped[int] = mapped_column(Integer, default=1)

    participant: Mapped[Participant] = relationship(back_populates="contacts")


class InboundMessage(Base):
    """Every message received, once: (channel, provider_id) is the idempotency key."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "provider_id", name="uq_inbound_provider"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    button: Mapped[str | None] = mapped_column(String(64))
    # The kind of attachment it came with ("photo", "voice", ...); the file is never kept.
    media: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxStatus(StrEnum):
    """The states of an outbox row, as stored:
    queued -> sending -> sent -> delivered | failed | expired | undeliverable | cancelled."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    UNDELIVERABLE = "undeliverable"
    CANCELLED = "cancelled"


# The outbox rows still to send, spelt as the partial indexes and the claim both spell it:
# a query uses a partial index only when its condition is this same text, not parameters.
PENDING_STATUSES = (OutboxStatus.QUEUED, OutboxStatus.SENDING)
PENDING_SQL = f"status IN ('{OutboxStatus.QUEUED}', '{OutboxStatus.SENDING}')"


class OutboxMessage(Base):
    """A message waiting to go out, being sent, or sent. Written with the state change."""

    __tablename__ = "outbox"
    __table_args__ = (
        # Both indexes cover only the rows still to send, so they stay small however much
        # was sent before, and a sent row leaves them. The dispatcher's claim walks the
        # first by due time and probes the second for an earlier pending row of a contact.
        Index(
            "ix_outbox_due",
            "status",
            "next_attempt_at",
            postgresql_where=text(PENDING_SQL),
            sqlite_where=text(PENDING_SQL),
        ),
        Index(
            "ix_outbox_pending_contact",
            "contact_id",
            "seq",
            postgresql_where=text(PENDING_SQL),
            sqlite_where=text(PENDING_SQL),
        ),
        UniqueConstraint("contact_id", "seq", name="uq_outbox_contact_seq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    seq: Mapped[int] = mapped_column(Integer)  # order of messages to one contact
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    # Buttons for Telegram, as [{"label": ..., "data": ...}]; SMS carries them in the text.
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    markdown: Mapped[bool] = mapped_column(Boolean, default=False)
    compliance: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(32), default="reply")
    broadcast_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    part: Mapped[int] = mapped_column(Integer, default=1)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    segments: Mapped[int] = mapped_column(Integer, default=1)
    encoding: Mapped[str | None] = mapped_column(String(8))  # "GSM-7" | "UCS-2" for SMS
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts that ended with no outcome: processing failed outside the send, or the lease
    # ran out first (a crash, an outcome that could not be written). Bounded: see retry.py.
    faults: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A message whose moment passes (a session's reminder, a preview's code) is never sent
    # after this: it ends "expired" instead of arriving late.
    expires_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]


class ProcessedUpdate(Base):
    """Idempotency keys of webhook calls that carry no message (status callbacks, buttons)."""

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("source", "key", name="uq_processed_update"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """One link of the audit hash chain. Inserted unlinked (seq, prev_hash and hash empty)
    in the transaction of the change it records; the sequencer links it afterwards. Never
    updated otherwise, never deleted."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # The sequencer's queue: events waiting to be linked, in insertion order.
        Index(
            "ix_audit_events_unlinked",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int | None] = mapped_column(BigId, unique=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64), index=True)
    participant_id: Mapped[str | None] = mapped_column(String(16), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """The chain's last link; the single row locked while linking, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class KeyFingerprint(Base):
    """The one row naming the secret key this database was first used with: a keyed hash
    of a constant, never the key (bot/services/key_check.py)."""

    __tablename__ = "key_fingerprint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]


class DeliveryLimit(Base):
    """A send-rate limit shared by every dispatcher on this database
    (bot/delivery/shared_limits.py).

    `sends` is a JSON list of the send times reserved in the last window, ascending, in
    seconds since the epoch on the database's clock; `tat` is the latest of them.
    """

    __tablename__ = "delivery_limits"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    tat: Mapped[float] = mapped_column(Double)
    sends: Mapped[str] = mapped_column(Text, server_default="[]")
