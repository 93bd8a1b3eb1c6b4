"""What a facilitator's chat command does, in the turn that carries it: the flow has
answered and emitted "facilitation.asked"; this turn hook changes the tables through the
conversation's service (bot.services.deliberation), in the same transaction. A table that
changed since the facilitator's facts were read (another facilitator, the timer) is said
plainly, in a second message."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services import deliberation
from bot.services.facilitation.joined import joined
from bot.services.facilitation.seats import tell_seats
from bot.services.groups.records import GroupsError, move_member
from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows import events
from flows.engine import MAX_TEXT
from flows.facilitation_words import CLOSE, HIDE, MOVE, PAUSE, POST, PROMPT, RESUME, parse
from flows.i18n import translator
from flows.model import Event, Outbound, Turn
from store.groups import GroupSeat, current_run
from store.models import Contact, Participant

log = logging.getLogger(__name__)


async def act(
    relay: Relay,
    session: AsyncSession,
    settings: Settings,
    *,
    participant: Participant,
    contact: Contact,
    text: str,
    turn: Turn,
    now: datetime,
) -> int:
    queued = 0
    for event in turn.events:
        if event.kind != events.FACILITATION_ASKED:
            continue
        try:
            async with session.begin_nested():
                queued += await _do(relay, session, event, text[:MAX_TEXT], now)
        except (deliberation.DeliberationError, GroupsError) as error:
            # Changed meanwhile: the flow's answer stands corrected by this one.
            log.info("facilitation: %s could not be done", event.data.get("action"))
            t = translator(participant.language)
            said = t.gettext("That could not be done after all: {reason}", reason=str(error))
            queued += await enqueue(
                session,
                settings,
                participant,
                contact,
                [Outbound(text=said)],
                prompt_id=None,
                now=now,
            )
    return queued


async def _do(relay: Relay, session: AsyncSession, event: Event, text: str, now: datetime) -> int:
    data = event.data
    action, round_no, by = data["action"], data["round"], data["by"]
    lent = joined(relay, session)
    queued = 0
    if action == MOVE:
        return await _move(relay, session, data, now)
    if action == HIDE:
        return (await deliberation.hide(lent, int(data["ref"]), by=by, now=now)).told
    for table in data["tables"]:
        if action in (POST, PROMPT):
            said = parse(text).text
            if action == POST:
                done = await deliberation.post(
                    lent, said, round_no=round_no, table=table, by=by, now=now
                )
            else:
                done = await deliberation.open_prompt(
                    lent, round_no=round_no, text=said, table=table, by=by, now=now
                )
        else:
            change = {
                PAUSE: deliberation.pause,
                RESUME: deliberation.resume,
                CLOSE: deliberation.end,
            }
            if action not in change:
                return 0  # STATS: answered by the flow, audited, nothing to change
            done = await change[action](lent, round_no=round_no, table=table, by=by, now=now)
        queued += done.messages
    return queued


async def _move(relay: Relay, session: AsyncSession, data: dict, now: datetime) -> int:
    run = await current_run(session)
    if run is None:
        raise GroupsError("No tables are allocated.")
    member = (
        await session.execute(
            select(GroupSeat.participant_id).where(
                GroupSeat.run_id == run.run_id,
                GroupSeat.round == data["round"],
                GroupSeat.table_no == data["source"],
                GroupSeat.letter == data["letter"],
            )
        )
    ).scalar_one_or_none()
    if member is None:
        raise GroupsError(f"Table {data['source']} has no Member {data['letter']} any more.")
    await move_member(session, member, data["round"], data["target"], now=now)
    return await tell_seats(
        session, relay.settings, run.run_id, data["round"], [data["source"], data["target"]], now
    )
