"""Two service instances on one database: every due job is claimed and sent once."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from scheduler.runner import CalendarRunner
from store.calendar import DONE, CalendarJob
from store.db import make_engine, sessionmaker
from store.models import Contact, OutboxMessage, Participant
from store.recruitment import CONFIRMED, Selection
from tests.calendar_world import at, load

PEOPLE = 20


async def test_two_instances_claim_each_job_once(db, settings):
    calendar = load()
    async with db.sessions.begin() as session:
        for n in range(PEOPLE):
            person = Participant(language="en", state={})
            session.add(person)
            await session.flush()
            channel = "telegram" if n % 2 else "sms"
            session.add(Contact(participant_id=person.id, channel=channel,
                                address=str(9000 + n) if n % 2 else f"+4477009{n:05d}",
                                sms_consent=channel == "sms"))
            session.add(Selection(participant_id=person.id, draw_id="d1", status=CONFIRMED))

    engines = [make_engine(db.url), make_engine(db.url)]
    try:
        # Small batches: many interleaved claims.
        runners = [CalendarRunner(sessionmaker(engine), settings, calendar=calendar,
                                  owner=f"instance-{n}", batch=5)
                   for n, engine in enumerate(engines)]
        # Monday 18:30: the day's briefing and the 24 h reminder of Tuesday's session are due.
        now = at("2027-03-08T18:30")
        ticks = await asyncio.gather(*(r.tick(now) for r in runners),
                                     *(r.tick(now) for r in runners))
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(t.ran for t in ticks) == 2 * PEOPLE

    async with db.sessions() as session:
        jobs = (await session.execute(select(CalendarJob))).scalars().all()
        rows = (await session.execute(select(OutboxMessage).where(
            OutboxMessage.part == 1))).scalars().all()
    due = [j for j in jobs if j.send_at <= now]
    assert len(due) == 2 * PEOPLE and {j.status for j in due} == {DONE}
    sent = Counter((m.participant_id, m.kind) for m in rows)
    assert len(sent) == 2 * PEOPLE and set(sent.values()) == {1}
