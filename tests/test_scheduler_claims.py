"""Two service instances on one database: every due job is claimed and sent once."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest
from sqlalchemy import select

from bot.services.outgoing import enqueuer
from scheduler.runner import CalendarRunner
from store.calendar import DONE, CalendarJob
from store.db import make_engine, sessionmaker
from store.models import Contact, OutboxMessage, Participant
from store.recruitment import CONFIRMED, Selection
from tests.calendar_world import CALENDAR, add_person, at, load, outbox

PEOPLE = 20


async def test_two_instances_claim_each_job_once(db, settings):
    calendar = load()
    async with db.sessions.begin() as session:
        for n in range(PEOPLE):
            person = Participant(language="en", state={})
            session.add(person)
            await session.flush()
            channel = "telegram" if n % 2 else "sms"
            session.add(
                Contact(
                    participant_id=person.id,
                    channel=channel,
                    address=str(9000 + n) if n % 2 else f"+4477009{n:05d}",
                    sms_consent=channel == "sms",
                )
            )
            session.add(Selection(participant_id=person.id, draw_id="d1", status=CONFIRMED))

    engines = [make_engine(db.url), make_engine(db.url)]
    try:
        # Small batches: many interleaved claims.
        runners = [
            CalendarRunner(
                sessionmaker(engine),
                enqueuer(settings),
                calendar=calendar,
                owner=f"instance-{n}",
                batch=5,
            )
            for n, engine in enumerate(engines)
        ]
        # Monday 18:30: the day's briefing and the 24 h reminder of Tuesday's session are due.
        now = at("2027-03-08T18:30")
        ticks = await asyncio.gather(
            *(r.tick(now) for r in runners), *(r.tick(now) for r in runners)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(t.ran for t in ticks) == 2 * PEOPLE

    async with db.sessions() as session:
        jobs = (await session.execute(select(CalendarJob))).scalars().all()
        rows = (
            (await session.execute(select(OutboxMessage).where(OutboxMessage.part == 1)))
            .scalars()
            .all()
        )
    due = [j for j in jobs if j.send_at <= now]
    assert len(due) == 2 * PEOPLE and {j.status for j in due} == {DONE}
    sent = Counter((m.participant_id, m.kind) for m in rows)
    assert len(sent) == 2 * PEOPLE and set(sent.values()) == {1}


async def test_a_crash_mid_batch_commits_nothing_and_the_next_run_sends_once(
    db, settings, monkeypatch
):
    calendar = load()
    people = [await add_person(db, channel="sms", address=f"+4477009008{n:02d}") for n in range(6)]
    real_enqueue, calls = enqueuer(settings), []

    async def failing_enqueue(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise ConnectionError("the process dies here")
        return await real_enqueue(*args, **kwargs)

    with pytest.raises(ConnectionError):
        await CalendarRunner(db.sessions, failing_enqueue, calendar=calendar).tick(
            at("2027-03-08T08:00")
        )
    assert [m for m in await outbox(db) if m.kind == "briefing"] == []
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-08T08:01"))
    sent = Counter(m.participant_id for m in await outbox(db) if m.kind == "briefing")
    assert sent == dict.fromkeys(people, 1)


async def test_a_session_moved_in_the_file_is_planned_again(db, settings, tmp_path):
    path = tmp_path / "assembly.toml"
    path.write_text(CALENDAR, encoding="utf-8")
    await add_person(db, channel="telegram", address="9901")
    runner = CalendarRunner(db.sessions, enqueuer(settings), path=path)
    await runner.tick(at("2027-03-07T12:00"))
    path.write_text(
        CALENDAR.replace("2027-03-09T18:30:00", "2027-03-09T19:30:00").replace(
            "2027-03-09T21:00:00", "2027-03-09T22:00:00"
        ),
        encoding="utf-8",
    )
    os.utime(path, (1, 1))  # a different modification time, whatever the file system
    await runner.tick(at("2027-03-07T12:01"))
    async with db.sessions() as session:
        jobs = (
            (await session.execute(select(CalendarJob).where(CalendarJob.subject == "s1")))
            .scalars()
            .all()
        )
    assert sorted((j.occurrence, j.status) for j in jobs) == [
        ("1d@20270309T1830Z", "cancelled"),
        ("1d@20270309T1930Z", "pending"),
        ("2h@20270309T1830Z", "cancelled"),
        ("2h@20270309T1930Z", "pending"),
    ]
