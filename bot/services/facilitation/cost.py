"""What a round of small-group conversation costs by SMS, in each relay mode.

One message at a table fans out to every other member: with EVERY, each member on SMS
gets each of the others' messages as it is sent; with DIGEST, the messages of every
`digest_minutes` come together in one message, so many short messages share segments.
Per table: members, those on SMS, and the segments a prompt costs when every member
writes `each` messages of `chars` characters (the fair share, by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from flows.deliberation import DIGEST, EVERY, MODE_KEY, relay_mode
from flows.segments import measure
from store.contacts import preferred_contacts
from store.groups import current_run, seats_of
from store.models import Participant

PREFIX = "Member C: "  # what the relay puts before each message


@dataclass(frozen=True)
class Assumptions:
    each: int = 3  # messages per member per prompt (the fair share)
    chars: int = 80  # characters per message (a short SMS)
    minutes: int = 20  # the prompt's length
    digest_minutes: int = 5


@dataclass(frozen=True)
class TableCost:
    table: int
    members: int
    on_sms: int
    digest_now: int  # members on SMS whose mode (chosen or default) is DIGEST
    every: int  # SMS segments per prompt if every SMS member takes EVERY
    digest: int  # ... DIGEST
    as_chosen: int  # ... each member in the mode they have now


def segments_received(mode: str, members: int, a: Assumptions) -> int:
    """Segments one SMS member receives in one prompt at a table of `members`."""
    others = (members - 1) * a.each
    if others <= 0:
        return 0
    one = measure(PREFIX + "a" * a.chars).segments
    if mode == EVERY:
        return others * one
    windows = max(1, min(others, math.ceil(a.minutes / a.digest_minutes)))
    per_digest = math.ceil(others / windows) * (len(PREFIX) + a.chars + 1)
    return windows * measure("a" * per_digest).segments


def table_cost(table: int, modes: list[str | None], a: Assumptions) -> TableCost:
    """`modes`: per member, None off SMS, else their relay mode (EVERY or DIGEST)."""
    members = len(modes)
    sms = [m for m in modes if m is not None]
    every = segments_received(EVERY, members, a)
    digest = segments_received(DIGEST, members, a)
    return TableCost(
        table,
        members,
        len(sms),
        sum(1 for m in sms if m == DIGEST),
        every * len(sms),
        digest * len(sms),
        sum(every if m == EVERY else digest for m in sms),
    )


async def round_costs(session: AsyncSession, round_no: int, a: Assumptions) -> list[TableCost]:
    run = await current_run(session)
    if run is None:
        return []
    seats = await seats_of(session, run.run_id, round_no)
    ids = [s.participant_id for s in seats]
    chosen = await preferred_contacts(session, ids)
    states = {p.id: p.state or {} for p in await _participants(session, ids)}
    tables: dict[int, list[str | None]] = {}
    for seat in seats:
        contact = chosen.get(seat.participant_id)
        mode = None
        if contact is not None and contact.channel == "sms":
            picked = (states.get(seat.participant_id, {}).get("data") or {}).get(MODE_KEY)
            mode = relay_mode(picked, "sms")
        tables.setdefault(seat.table_no, []).append(mode)
    return [table_cost(t, modes, a) for t, modes in sorted(tables.items())]


async def _participants(session: AsyncSession, ids: list[str]) -> list[Participant]:
    from sqlalchemy import select

    rows = await session.execute(select(Participant).where(Participant.id.in_(ids)))
    return list(rows.scalars())
