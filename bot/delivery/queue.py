"""What waits in the outbox, per channel: for /healthz, /metrics, `concorder outbox` and the
organiser page; and every row and opt-out counted per channel."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, literal, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import PENDING_SQL, Contact, OutboxMessage, Participant, UTCDateTime

outbox = OutboxMessage.__table__


@dataclass
class Waiting:
    """The messages of one channel still to send."""

    channel: str
    pending: int  # queued or being sent, due or not
    retrying: int  # of those, the ones whose last attempt failed
    oldest_due: datetime | None  # when the message waiting longest became due

    def waited(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest_due).total_seconds()) if self.oldest_due else 0.0

    def as_json(self, now: datetime) -> dict[str, object]:
        return {
            "pending": self.pending,
            "retrying": self.retrying,
            "oldest_waiting_seconds": round(self.waited(now), 1),
            "oldest_waiting_since": self.oldest_due.isoformat() if self.oldest_due else None,
        }


async def waiting(session: AsyncSession, now: datetime) -> dict[str, Waiting]:
    """One pass over the pending rows (the partial indexes' own condition, so they serve)."""
    due = case((outbox.c.not_before <= literal(now, UTCDateTime()), outbox.c.not_before))
    failed_before = case((outbox.c.error.is_not(None), 1), else_=0)
    rows = (
        await session.execute(
            select(
                outbox.c.channel,
                func.count(),
                func.sum(failed_before),
                func.min(due, type_=UTCDateTime()),
            )
            .where(literal_column(PENDING_SQL))
            .group_by(outbox.c.channel)
        )
    ).all()
    return {
        channel: Waiting(channel, count, int(retrying or 0), oldest)
        for channel, count, retrying, oldest in rows
    }


async def by_channel(session: AsyncSession) -> dict[str, Counter[str]]:
    """Every outbox row ever written, per channel and state as stored."""
    found: dict[str, Counter[str]] = {}
    for channel, state, count in await session.execute(
        select(OutboxMessage.channel, OutboxMessage.status, func.count()).group_by(
            OutboxMessage.channel, OutboxMessage.status
        )
    ):
        found.setdefault(channel, Counter())[state] = count
    return found


async def opted_out_by_channel(session: AsyncSession) -> Counter[str]:
    """Contacts per channel that cannot be sent to: the person said STOP, or the carrier
    reported an opt-out for this number."""
    rows = await session.execute(
        select(Contact.channel, func.count())
        .join(Participant, Participant.id == Contact.participant_id)
        .where(or_(Participant.opted_out.is_(True), Contact.opted_out_at.is_not(None)))
        .group_by(Contact.channel)
    )
    return Counter(dict(rows.all()))
