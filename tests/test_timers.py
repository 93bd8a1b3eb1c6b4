"""Timed jobs stop with the service, and what they had not committed is rolled back."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from sqlalchemy import func, select

from scheduler import timers
from store.models import Participant, new_participant_id


async def test_stopping_the_service_cancels_a_job_inside_a_transaction(sqlite_db):
    """A job holding SQLite's write lock when the service stops: the stop takes moments,
    no job is left running once it has stopped (one left behind was cancelled only at the
    event loop's end, after the database had closed, and then waited minutes), the job's
    unfinished write is rolled back, and the database is usable at once."""
    inside = asyncio.Event()

    async def job() -> None:
        async with sqlite_db.sessions.begin() as session:
            session.add(Participant(id=new_participant_id(), language="en", state={}))
            await session.flush()
            inside.set()
            await asyncio.Event().wait()  # never commits

    app = web.Application()
    timers.add(app, "holds a transaction", 3600, job)
    timers.install(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await asyncio.wait_for(inside.wait(), 10)

    started = time.monotonic()
    await runner.cleanup()
    assert time.monotonic() - started < 5
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    async with sqlite_db.sessions.begin() as session:  # the write lock is free again
        assert await session.scalar(select(func.count()).select_from(Participant)) == 0
        session.add(Participant(id=new_participant_id(), language="en", state={}))
