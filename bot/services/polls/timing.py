"""Polls on time: the assembly file's `[[polls]]` stored and their waves planned, then each
due wave opened, an interrupted opening finished, reminders sent and waves closed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from bot.relay import Relay
from bot.services.polls.records import PollProblem, assembly_polls, get_poll, store_polls
from bot.services.polls.waves import ask_roll, close_due, open_wave, remind_due
from scheduler import timers
from store.models import utcnow
from store.polls import OPEN, PENDING, PollRoll, PollWave

log = logging.getLogger(__name__)
TICK_SECONDS = 30


async def tick(relay: Relay, now: datetime | None = None) -> list[str]:
    """What came due: 'opened POLL/WAVE', 'reminded N', 'closed POLL/WAVE'."""
    now = now or utcnow()
    polls = assembly_polls(relay)
    if polls:
        async with relay.sessions.begin() as session:
            await store_polls(session, polls, relay.calendar, now)
    done: list[str] = []
    async with relay.sessions() as session:
        due = list(
            (
                await session.execute(
                    select(PollWave)
                    .where(PollWave.status == PENDING, PollWave.due_at <= now)
                    .order_by(PollWave.due_at)
                )
            ).scalars()
        )
        late = []
        for wave in due:
            hours = (await get_poll(session, wave.poll_id)).definition["open_hours"]
            if wave.due_at + timedelta(hours=hours) <= now:
                late.append(wave)  # its whole time passed while nothing ran: by hand only
        unasked = (
            await session.execute(
                select(PollRoll.poll_id, PollRoll.wave_id)
                .join(
                    PollWave,
                    (PollWave.poll_id == PollRoll.poll_id) & (PollWave.wave_id == PollRoll.wave_id),
                )
                .where(PollWave.status == OPEN, PollRoll.asked.is_(False))
                .distinct()
            )
        ).all()
    for wave in due:
        if wave in late:
            log.warning(
                "poll %s wave %s missed its time: send it by hand", wave.poll_id, wave.wave_id
            )
            continue
        try:
            await open_wave(relay, wave.poll_id, wave.wave_id, now=now)
            done.append(f"opened {wave.poll_id}/{wave.wave_id}")
        except PollProblem as problem:  # another instance did it, or nobody to ask
            log.warning("poll %s wave %s not opened: %s", wave.poll_id, wave.wave_id, problem)
    for poll_id, wave_id in unasked:
        await ask_roll(relay, poll_id, wave_id, now=now)
    reminded = await remind_due(relay, now)
    if reminded:
        done.append(f"reminded {reminded}")
    done += await close_due(relay, now)
    return done


def install(app: web.Application, relay: Relay) -> None:
    async def job() -> None:
        await tick(relay)

    timers.add(app, "polls: send waves and reminders on time", TICK_SECONDS, job)
