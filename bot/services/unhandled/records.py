"""What the organisers' command reads and does: the messages still unhandled, and those
put back to be tried again. Ids, times and counts only: never the text or the address."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import InboundMessage
from store.unhandled import UnhandledInbound


@dataclass(frozen=True)
class Waiting:
    id: int
    channel: str
    received_at: datetime
    failures: int
    failure: str | None
    next_at: datetime
    gave_up_at: datetime | None


async def unhandled(session: AsyncSession) -> list[Waiting]:
    """Every message not handled yet, oldest first."""
    rows = await session.execute(
        select(
            UnhandledInbound.id,
            UnhandledInbound.channel,
            InboundMessage.received_at,
            UnhandledInbound.failures,
            UnhandledInbound.failure,
            UnhandledInbound.next_at,
            UnhandledInbound.gave_up_at,
        )
        .join(InboundMessage, InboundMessage.id == UnhandledInbound.id)
        .order_by(UnhandledInbound.id)
    )
    return [Waiting(*row) for row in rows]


async def counts(session: AsyncSession) -> tuple[int, int]:
    """How many messages are still tried again, and how many were given up on."""
    given_up = UnhandledInbound.gave_up_at.is_not(None)
    rows = await session.execute(
        select(given_up, func.count()).select_from(UnhandledInbound).group_by(given_up)
    )
    by_state = dict(rows.all())
    return by_state.get(False, 0), by_state.get(True, 0)


async def put_back(session: AsyncSession, ids: list[int] | None, now: datetime) -> list[int]:
    """Make the given messages (None: every one given up on) due now with a fresh count of
    tries, so a fault that lasts is again tried for an hour; the ids put back."""
    which = (
        UnhandledInbound.id.in_(ids)
        if ids is not None
        else UnhandledInbound.gave_up_at.is_not(None)
    )
    put = await session.execute(
        update(UnhandledInbound)
        .where(which)
        .values(gave_up_at=None, failures=0, next_at=now)
        .returning(UnhandledInbound.id)
    )
    return sorted(put.scalars())


async def forget_during_ballot(
    session: AsyncSession, contact_ids: list[int], since: datetime, now: datetime
) -> int:
    """At a ballot's close: what its voters sent while it was open and is still unhandled
    may be a vote. Handled, such a message is blanked in its turn; this one never will be
    (the ballot is over), so it is blanked now and given up on, and no row keeps a choice
    beside its voter. How many."""
    if not contact_ids:
        return 0
    ids = list(
        (
            await session.execute(
                select(UnhandledInbound.id)
                .join(InboundMessage, InboundMessage.id == UnhandledInbound.id)
                .where(
                    UnhandledInbound.contact_id.in_(contact_ids),
                    InboundMessage.received_at >= since,
                )
            )
        ).scalars()
    )
    if not ids:
        return 0
    await session.execute(
        update(InboundMessage).where(InboundMessage.id.in_(ids)).values(text="", button=None)
    )
    await session.execute(
        update(UnhandledInbound)
        .where(UnhandledInbound.id.in_(ids))
        .values(gave_up_at=now, failure="ballot closed")
    )
    return len(ids)
