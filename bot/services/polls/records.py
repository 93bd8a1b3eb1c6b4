"""Poll definitions and their waves as stored: the assembly file's `[[polls]]` written in
(a definition changes only until its first wave opens: every wave asks the same
questions), and each pending wave's time kept in line with the calendar (a moved session
moves its waves)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from flows.poll_spec import PollDef, PollError, check, plain
from scheduler.config import Calendar
from scheduler.facts import load_moves
from scheduler.polls import wave_times
from store.db import dialect_insert
from store.polls import PENDING, Poll, PollWave


class PollProblem(RuntimeError):
    """What an organiser asked cannot be done; the message says why."""


def assembly_polls(relay: Relay) -> list[PollDef]:
    assembly = relay.assembly
    if assembly is None or not assembly.polls:
        return []
    try:
        return check(assembly.polls, "", "assembly", assembly.languages, None)
    except PollError:  # the assembly was checked as it loaded
        return []


async def store_polls(
    session: AsyncSession, polls: list[PollDef], calendar: Calendar | None, now: datetime
) -> None:
    """Write the definitions in and plan their waves (safe on several instances: inserts
    that another made first do nothing)."""
    if not polls:
        return
    moves = await load_moves(session)
    for poll in polls:
        await session.execute(
            dialect_insert(session, Poll)
            .values(id=poll.id, definition=plain(poll), created_at=now)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        waves = {
            w.wave_id: w
            for w in (
                await session.execute(select(PollWave).where(PollWave.poll_id == poll.id))
            ).scalars()
        }
        if all(w.status == PENDING for w in waves.values()):
            row = await session.get(Poll, poll.id)
            if row.definition != plain(poll):
                row.definition = plain(poll)
        for position, (wave_id, due) in enumerate(wave_times(poll, calendar, moves).items()):
            wave = waves.get(wave_id)
            if wave is None:
                await session.execute(
                    dialect_insert(session, PollWave)
                    .values(
                        poll_id=poll.id,
                        wave_id=wave_id,
                        position=position,
                        status=PENDING,
                        due_at=due,
                    )
                    .on_conflict_do_nothing(index_elements=["poll_id", "wave_id"])
                )
            elif wave.status == PENDING and (wave.due_at, wave.position) != (due, position):
                wave.due_at, wave.position = due, position


async def get_poll(session: AsyncSession, poll_id: str) -> Poll:
    poll = await session.get(Poll, poll_id)
    if poll is None:
        known = (await session.execute(select(Poll.id).order_by(Poll.id))).scalars().all()
        raise PollProblem(f"There is no poll {poll_id!r} (polls: {', '.join(known) or 'none'}).")
    return poll


async def waves_of(session: AsyncSession, poll_id: str) -> list[PollWave]:
    return list(
        (
            await session.execute(
                select(PollWave).where(PollWave.poll_id == poll_id).order_by(PollWave.position)
            )
        ).scalars()
    )
