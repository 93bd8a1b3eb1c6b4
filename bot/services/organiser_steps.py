"""The organisers' commands as plain steps over the services, for what runs them without a
person at the keyboard (the demo's tour, a rehearsal): the draw (`concorder select`), the
places freed filled (`replace`, then `notify-draw`) and the tables (`groups assign`, then
`groups notify`). Each caller keeps its own seeds, order and what it does around them."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime

from bot.relay import Relay
from bot.services import draw, recruitment
from bot.services.draw import Draw, DrawInput, DrawRecordError, DrawRules, Replacement
from bot.services.groups import allocate as alloc
from bot.services.groups import records as group_records
from bot.services.groups.notify import notify_seats
from store.draw_records import completed_selection

ALGORITHM = "maximin"
TABLE_SIZE = 6


@dataclass(frozen=True)
class Drawn:
    inp: DrawInput
    result: Draw
    draw_id: str


async def select(relay: Relay, rules: DrawRules, seed: str) -> Drawn:
    """`concorder select --seed SEED`: the stratified draw, recorded; nobody told yet.
    Raises DrawRecordError (a draw already made) or DrawError (no panel fits)."""
    async with relay.sessions() as session:
        await draw.refuse_second_draw(session)
        inp = await draw.draw_input(session, rules)
    # The solver runs in a child process; the service keeps answering meanwhile.
    result = await asyncio.to_thread(draw.run_draw, inp, seed, ALGORITHM)
    payload = draw.select_payload(result, seed, ALGORITHM, 1, None)
    async with relay.sessions.begin() as session:
        run = await draw.record_selection(session, result, payload)
    return Drawn(inp, result, run.draw_id)


async def replace(
    relay: Relay,
    seed: str,
    *,
    candidates: list[str] | None = None,
    now: datetime | None = None,
) -> tuple[Replacement, str] | None:
    """`concorder replace --seed SEED` (only `candidates` called up, if given) then
    `notify-draw`: the places freed since the draw filled, quotas kept, and the new ones
    asked to confirm. Returns the replacement and its draw id; None if the panel is full.
    Raises DrawRecordError (no panel drawn) or DrawError (no one fits)."""
    async with relay.sessions() as session:
        done = await completed_selection(session)
        if done is None:
            raise DrawRecordError("no panel was drawn")
        inp = await draw.replace_input(session, draw.recorded_rules(done), [])
    if candidates is not None:
        inp = dataclasses.replace(inp, candidate_tiers=[candidates])
    if len(inp.kept) >= inp.panel_size:
        return None
    result = await asyncio.to_thread(draw.run_replace, inp, seed, ALGORITHM)
    payload = draw.replace_payload(result, seed, ALGORITHM)
    async with relay.sessions.begin() as session:
        run = await draw.record_replacement(session, result, payload)
    await recruitment.notify_draw_outcome(relay, relay.assembly, now)
    return result, run.draw_id


async def seat(
    relay: Relay,
    seed: str,
    *,
    rounds: int = 1,
    mix_languages: bool = True,
    now: datetime | None = None,
) -> str:
    """`concorder groups assign --size 6 --seed SEED` then `groups notify`: the confirmed
    panel at tables of TABLE_SIZE for `rounds` rounds, each told their seats. Returns the
    allocation's id. Raises GroupsError (no panel) or AllocationError (no seating fits)."""
    async with relay.sessions() as session:
        members, categories = await group_records.panel_members(session)
    problem = alloc.Problem(
        tuple(members), tuple(categories), TABLE_SIZE, rounds, seed, (), mix_languages
    )
    comparison = alloc.allocate(problem)
    async with relay.sessions.begin() as session:
        done = await group_records.record_allocation(session, problem, comparison, now=now)
    await notify_seats(relay, now=now)
    return done.run.run_id
