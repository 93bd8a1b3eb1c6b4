"""After a facilitator's MOVE in the chat: the members of both tables are told their seats
again at once (what `concorder groups notify` would tell them), in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.groups.notify import KIND, seat_message
from bot.services.outgoing import enqueue
from bot.services.people import lock_participant, preferred_contact
from bot.settings import Settings
from flows.i18n import translator
from flows.model import Outbound
from store import audit
from store.groups import seats_of


async def tell_seats(
    session: AsyncSession,
    settings: Settings,
    run_id: str,
    round_no: int,
    tables: list[int],
    now: datetime,
) -> int:
    """Queue the seat message of every untold seat at `tables` in `round_no`."""
    seats = [s for s in await seats_of(session, run_id, round_no) if s.table_no in tables]
    letters: dict[int, list[str]] = {}
    for seat in seats:
        letters.setdefault(seat.table_no, []).append(seat.letter)
    queued = told = 0
    for seat in seats:
        if seat.notified_at is not None:
            continue
        participant = await lock_participant(session, seat.participant_id)
        if participant.opted_out or (participant.state or {}).get("opted_out"):
            continue
        contact = await preferred_contact(session, participant)
        if contact is None:
            continue
        others = [x for x in letters[seat.table_no] if x != seat.letter]
        text = seat_message(
            translator(participant.language), round_no, seat.table_no, seat.letter, others
        )
        queued += await enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text=text, kind=KIND)],
            prompt_id=None,
            now=now,
        )
        seat.notified_at = now
        told += 1
    if told:
        await audit.append(
            session, "groups.notified", {"run": run_id, "round": round_no, "people": told}, at=now
        )
    return queued
