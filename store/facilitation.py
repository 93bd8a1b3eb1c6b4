"""Facilitators named for one small-group table: an address (a Telegram user id or an E.164
phone) that may act on that table, in one round or in every round.

Organisers facilitate every table without a row here. Rights follow the address a message
comes in on, as organisers' do: whoever writes from that chat or number is the facilitator.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

EVERY_ROUND = 0


class FacilitatorRole(Base):
    __tablename__ = "facilitator_roles"
    __table_args__ = (
        UniqueConstraint(
            "channel", "address", "table_no", "round", name="uq_facilitator_roles_seat"
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(16))  # telegram | sms
    address: Mapped[str] = mapped_column(String(64), index=True)
    table_no: Mapped[int] = mapped_column(Integer)
    round: Mapped[int] = mapped_column(Integer, default=EVERY_ROUND)  # 0: every round
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
