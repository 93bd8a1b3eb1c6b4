"""A person's messages wait behind their earliest unhandled one: the queue's two questions
inside an inbound turn's transaction (who has a message waiting; keep this one behind it).

Only messages still being tried hold the later ones back: once the service has given up on
one (the organisers are told), the person's next messages are handled again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from store.unhandled import UnhandledInbound

UNHANDLED = UnhandledInbound.__table__


async def waiting(session: AsyncSession, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (channel, address) among `keys` that have a message still to be handled."""
    if not keys:
        return set()
    rows = await session.execute(
        select(UNHANDLED.c.channel, UNHANDLED.c.address)
        .where(
            tuple_(UNHANDLED.c.channel, UNHANDLED.c.address).in_(sorted(keys)),
            UNHANDLED.c.gave_up_at.is_(None),
        )
        .distinct()
    )
    return {(channel, address) for channel, address in rows}


def row(
    record_id: int,
    contact_id: int | None,
    *,
    channel: str,
    address: str,
    language_hint: str | None,
    now: datetime,
    failure: str | None = None,
    next_at: datetime | None = None,
) -> dict:
    """An unhandled message's row: queued behind an earlier one (due at once, so it is
    handled as soon as that one is), or kept after its turn failed (`failure`, `next_at`)."""
    return {
        "id": record_id,
        "channel": channel,
        "address": address,
        "contact_id": contact_id,
        "language_hint": language_hint[:16] if language_hint else None,
        "failures": 1 if failure else 0,
        "failure": failure,
        "kept_at": now,
        "next_at": next_at or now,
        "gave_up_at": None,
    }


async def hold(session: AsyncSession, rows: list[dict]) -> None:
    if rows:
        await session.execute(UNHANDLED.insert(), rows)
