"""The organiser page's sign-in: tokens and one-time links, and the sessions they open.

Only SHA-256 hashes of the secrets are stored: a copy of the database signs nobody in."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

TOKEN, LINK = "token", "link"


class OrganiserSignin(Base):
    """A sign-in secret given to one organiser: a token (reusable until it expires) or a
    link (used once)."""

    __tablename__ = "organiser_signins"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organiser_id: Mapped[int] = mapped_column(
        ForeignKey("organisers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # token | link
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OrganiserSession(Base):
    """A signed-in browser: the cookie's hash, until it expires or the organiser signs out."""

    __tablename__ = "organiser_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    organiser_id: Mapped[int] = mapped_column(
        ForeignKey("organisers.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
