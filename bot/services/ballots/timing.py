"""Ballots opened and closed at their times: the assembly file's `[[ballots]]` are stored
(new ones only; a changed draft is updated), then each due draft opens and each due open
ballot closes. Safe on several instances: opening and closing lock the ballot's row and
check its status, so only the first instance to take it does the work.
"""

from __future__ import annotations

import logging
from datetime import datetime

from aiohttp import web
from sqlalchemy import select

from bot.relay import Relay
from bot.services.ballots.opening import ask_voters, open_ballot
from bot.services.ballots.records import BallotProblem, close_ballot, create, scrub_messages
from flows.ballot_spec import BallotDef, BallotError, check
from scheduler import timers
from store.ballots import DRAFT, OPEN, Ballot, BallotRoll
from store.models import utcnow

log = logging.getLogger(__name__)
TICK_SECONDS = 30


def assembly_ballots(relay: Relay) -> list[BallotDef]:
    assembly = relay.assembly
    if assembly is None or not assembly.ballots:
        return []
    try:
        return check(assembly.ballots, "", "assembly", assembly.languages)
    except BallotError:  # the assembly was checked as it loaded
        return []


async def tick(relay: Relay, now: datetime | None = None) -> list[str]:
    """What came due: 'opened ID' / 'closed ID' for each."""
    now = now or utcnow()
    ballots = assembly_ballots(relay)
    if ballots:
        async with relay.sessions.begin() as session:
            await create(session, ballots, source="assembly", now=now)
    async with relay.sessions() as session:
        due_open = (
            await session.execute(
                select(Ballot.id).where(Ballot.status == DRAFT, Ballot.opens_at <= now)
            )
        ).scalars()
        due_open = list(due_open)
        due_close = list(
            (
                await session.execute(
                    select(Ballot.id).where(Ballot.status == OPEN, Ballot.closes_at <= now)
                )
            ).scalars()
        )
        any_open = await session.scalar(select(Ballot.id).where(Ballot.status == OPEN).limit(1))
        # An opening a crash interrupted: voters on the roll not asked yet.
        unasked = list(
            (
                await session.execute(
                    select(BallotRoll.ballot_id)
                    .join(Ballot, Ballot.id == BallotRoll.ballot_id)
                    .where(Ballot.status == OPEN, BallotRoll.asked.is_(False))
                    .distinct()
                )
            ).scalars()
        )
    done = []
    for ballot_id in due_open:
        try:
            await open_ballot(relay, ballot_id, now=now)
            done.append(f"opened {ballot_id}")
        except BallotProblem as problem:  # another instance did it, or nobody may vote
            log.warning("ballot %s not opened: %s", ballot_id, problem)
    for ballot_id in unasked:
        if ballot_id not in due_close:
            await ask_voters(relay, ballot_id, now=now)
    for ballot_id in due_close:
        try:
            await close_ballot(relay, ballot_id, now=now)
            done.append(f"closed {ballot_id}")
        except BallotProblem as problem:
            log.info("ballot %s not closed: %s", ballot_id, problem)
    if any_open is None:
        async with relay.sessions.begin() as session:
            await scrub_messages(session)
    return done


def install(app: web.Application, relay: Relay) -> None:
    async def job() -> None:
        await tick(relay)

    timers.add(app, "ballots: open and close on time", TICK_SECONDS, job)
