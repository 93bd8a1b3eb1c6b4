"""What the organisers do between the visitor's steps, each through the services the
`concorder` commands call: the draw (`select`, `notify-draw`), a place freed and filled
(`replace`), the tables (`groups assign`, `groups notify`), a briefing sent (the calendar's
own job), a prompt opened at the tables (`groups prompt`), the ballot opened and closed
(`ballot open`, `ballot close`).

The simulated people answer through the conversation as anyone would (`turns.receive`):
they CONFIRM their place, speak at the table and vote. The draw and the tables are the
shared organiser steps (bot/services/organiser_steps.py), as in a rehearsal.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from bot.relay import Relay
from bot.services import draw, organiser_steps, outgoing, recruitment, turns
from bot.services.ballots import close_ballot, create, open_ballot
from bot.services.ballots.timing import assembly_ballots
from bot.services.deliberation import open_prompt
from bot.services.deliberation.timing import relay_waiting
from bot.services.demo import places
from scheduler.jobs import run_due, sync
from store import audit
from store.ballots import BallotRoll
from store.calendar import CalendarJob
from store.draw_records import completed_selection
from store.groups import GroupSeat, current_run
from store.models import Contact, utcnow
from store.recruitment import CONFIRMED, DECLINED, SELECTED, Selection

DRAW_SEED = "riverside demo draw"  # announced on the page before the draw
REPLACE_SEED = "riverside demo call-up"
TABLES_SEED = "riverside demo tables"
BRIEFING = "evidence"  # the one with the three sides' views: balanced information
PROMPT = "bus-priorities"
PROMPT_MINUTES = 180
BALLOT = "fares"
VOTES_SEED = "riverside demo votes"


@dataclass(frozen=True)
class DrawOutcome:
    draw_id: str
    respondents: int
    panel_size: int
    visitor_status: str  # selected, reserve, or not selected
    chance: float | None  # the visitor's selection probability
    leaving: list[str]  # the simulated members who decline, to free a place


async def _say(relay: Relay, channel: str, address: str, text: str) -> None:
    """A simulated person's message, through the same turn as any inbound message."""
    await turns.receive(
        relay, channel=channel, address=address, text=text, provider_id=f"demo-{uuid.uuid4().hex}"
    )


async def _contacts(relay: Relay, pids: list[str]) -> dict[str, Contact]:
    async with relay.sessions() as session:
        rows = (
            await session.execute(select(Contact).where(Contact.participant_id.in_(pids)))
        ).scalars()
        return {c.participant_id: c for c in rows}


async def run_draw(relay: Relay, visitor_id: str, seed: str = DRAW_SEED) -> DrawOutcome:
    """`concorder select --seed SEED` then `concorder notify-draw`; the simulated selected
    answer CONFIRM. If the visitor is not on the panel, one simulated member whose place
    the visitor can take under the quotas answers DECLINE instead, or two or three whose
    places the visitor and others can fill (bot.services.demo.places; see `call_up`)."""
    rules = draw.rules_from_assembly(relay.assembly)
    drawn = await organiser_steps.select(relay, rules, seed)
    inp, result = drawn.inp, drawn.result
    await recruitment.notify_draw_outcome(relay, relay.assembly)
    leaving: list[str] = []
    if visitor_id not in result.selected:
        answers = {r.id: r.attributes for r in inp.respondents}
        not_drawn = [pid for pid in answers if pid not in result.selected and pid != visitor_id]
        leaving, _ = places.make_room(answers, rules.quotas, result.selected, visitor_id, not_drawn)
    others = [pid for pid in result.selected if pid != visitor_id]
    await _answer(relay, others, declining=leaving)
    status = (
        "selected"
        if visitor_id in result.selected
        else "reserve"
        if visitor_id in result.reserve
        else "not selected"
    )
    return DrawOutcome(
        drawn.draw_id,
        len(inp.respondents),
        rules.panel_size,
        status,
        result.probabilities.get(visitor_id),
        leaving,
    )


async def _answer(relay: Relay, pids: list[str], *, declining: list[str]) -> None:
    """The simulated selected answer: CONFIRM (or DECLINE) by SMS; those with no phone
    answer the organisers, who record it as `respondents answer` does."""
    contacts = await _contacts(relay, pids)
    for pid in pids:
        word = "DECLINE" if pid in declining else "CONFIRM"
        contact = contacts.get(pid)
        if contact is not None:
            await _say(relay, contact.channel, contact.address, word)
        else:
            await _record_answer(relay, pid, DECLINED if pid in declining else CONFIRMED)


async def _record_answer(relay: Relay, pid: str, status: str) -> None:
    async with relay.sessions.begin() as session:
        seat = (
            await session.execute(select(Selection).where(Selection.participant_id == pid))
        ).scalar_one()
        if seat.status != SELECTED:
            return
        seat.status, seat.responded_at = status, utcnow()
        seat.reason = "declined" if status == DECLINED else None
        await audit.append(
            session, "selection.answered_to_organisers", {"status": status}, participant_id=pid
        )


async def call_up(relay: Relay, visitor_id: str, seed: str = REPLACE_SEED) -> str:
    """`concorder replace --seed SEED`, with the visitor as the candidate (and, when more
    than one place was freed, the registrants who fill the others with the quotas kept):
    the visitor is asked to confirm; the others confirm. Returns the replacement's id."""
    async with relay.sessions() as session:
        done = await completed_selection(session)
        inp = await draw.replace_input(session, draw.recorded_rules(done), []) if done else None
    joining: list[str] = []
    if inp is not None and inp.panel_size - len(inp.kept) > 1:
        answers = {r.id: r.attributes for r in inp.respondents}
        staying = [answers[pid] for pid in inp.kept] + [answers[visitor_id]]
        others = [pid for tier in inp.candidate_tiers for pid in tier if pid != visitor_id]
        places_left = inp.panel_size - len(inp.kept) - 1
        joining = places.fill(answers, inp.quotas, staying, others, places_left) or []
    replaced = await organiser_steps.replace(relay, seed, candidates=[visitor_id, *joining])
    if replaced is None:  # as `concorder replace` says when no one declined
        raise draw.DrawError("The panel is full: nobody needs replacing.")
    await _answer(relay, joining, declining=[])
    return replaced[1]


async def seat_tables(relay: Relay, seed: str = TABLES_SEED) -> str:
    """`concorder groups assign --size 6 --seed SEED` and `concorder groups notify`.
    Languages are mixed: the visitor's table-mates then write in the visitor's language."""
    run_id = await organiser_steps.seat(relay, seed)
    relay.outbox_signal.set()
    return run_id


async def send_briefing(relay: Relay, briefing: str = BRIEFING, now: datetime | None = None) -> int:
    """The calendar's briefing job for every panel member, brought forward to now and run
    by the scheduler as on its day. Returns the messages queued."""
    now = now or utcnow()
    calendar = relay.calendar
    async with relay.sessions.begin() as session:
        await sync(session, calendar, now)
        await session.execute(
            update(CalendarJob)
            .where(CalendarJob.kind == "briefing", CalendarJob.subject == briefing)
            .values(send_at=now, due_at=now)
        )
    queued = await run_due(relay.sessions, outgoing.enqueuer(relay.settings), calendar, now)
    relay.outbox_signal.set()
    return queued


async def open_group_prompt(
    relay: Relay, visitor_id: str, contributions: list[str], prompt: str = PROMPT
) -> int:
    """`concorder groups prompt ID --round 1` (after seating the tables if not done);
    then the visitor's table-mates post `contributions`, one each while there are enough
    of them who can write. Returns the table."""
    async with relay.sessions() as session:
        run = await current_run(session)
    if run is None:
        await seat_tables(relay)
    # Open long enough for a visitor who takes their time: just after a table's question
    # closes, an SMS reply is taken as a late word to the table, and a vote would be lost.
    await open_prompt(relay, round_no=1, prompt=prompt, minutes=PROMPT_MINUTES, by="demo")
    async with relay.sessions() as session:
        run = await current_run(session)
        seats = list(
            (
                await session.execute(
                    select(GroupSeat)
                    .where(GroupSeat.run_id == run.run_id, GroupSeat.round == 1)
                    .order_by(GroupSeat.letter)
                )
            ).scalars()
        )
    table = next(s.table_no for s in seats if s.participant_id == visitor_id)
    mates = [
        s.participant_id for s in seats if s.table_no == table and s.participant_id != visitor_id
    ]
    contacts = await _contacts(relay, mates)
    # Those with no phone (they answered the organisers) cannot write: the others speak in
    # turn, each within the prompt's fair share, until every contribution is said.
    speakers = [contacts[pid] for pid in mates if pid in contacts]
    for n, text in enumerate(contributions if speakers else ()):
        contact = speakers[n % len(speakers)]
        await _say(relay, contact.channel, contact.address, text)
    await relay_waiting(relay)  # as the service's relay loop does a moment later
    relay.outbox_signal.set()
    return table


async def open_the_ballot(relay: Relay, visitor_id: str, ballot: str = BALLOT) -> int:
    """`concorder ballot open ID`: the roll fixed, every voter asked; the simulated voters
    answer with a level of the scale. Returns the voters on the roll."""
    async with relay.sessions.begin() as session:
        await create(session, assembly_ballots(relay), source="assembly")
    opened = await open_ballot(relay, ballot)
    async with relay.sessions() as session:
        roll = list(
            (
                await session.execute(
                    select(BallotRoll.participant_id).where(BallotRoll.ballot_id == ballot)
                )
            ).scalars()
        )
    contacts = await _contacts(relay, [pid for pid in roll if pid != visitor_id])
    rng = random.Random(VOTES_SEED)
    for pid in sorted(contacts):
        level = rng.choices(["2", "3", "4", "5"], [1, 1, 3, 3])[0]
        await _say(relay, contacts[pid].channel, contacts[pid].address, level)
        await _say(relay, contacts[pid].channel, contacts[pid].address, "1")  # cast it
    relay.outbox_signal.set()
    return opened.voters


async def close_the_ballot(relay: Relay, ballot: str = BALLOT) -> int:
    """`concorder ballot close ID`: counted, receipts published, results to the roll.
    Returns how many voted."""
    closed = await close_ballot(relay, ballot)
    relay.outbox_signal.set()
    return closed.voted
