"""Every timed job of the running service on one apscheduler 3 AsyncIOScheduler.

Features add their periodic work with `add(app, name, seconds, job)` while the app is built;
the scheduler starts with the service and stops with it. Each job must be safe to run on
several instances at once (they claim rows) and to miss a beat: a slow run is never
overlapped by the next one, and missed runs are coalesced into one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from store.models import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timer:
    name: str
    seconds: float
    job: Callable[[], Awaitable[object]]


TIMERS = web.AppKey("timers", list)


def add(
    app: web.Application, name: str, seconds: float, job: Callable[[], Awaitable[object]]
) -> None:
    """Run `job` every `seconds` (first right at start-up) while the service runs."""
    if TIMERS not in app:
        app[TIMERS] = []
    app[TIMERS].append(Timer(name, seconds, job))


# How long a stopping service waits for a job it has cancelled to roll back.
STOP_SECONDS = 10.0


def _guarded(timer: Timer, running: set[asyncio.Task]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        task = asyncio.current_task()
        running.add(task)
        try:
            await timer.job()
        except Exception:  # keep ticking; the next run retries what did not commit
            log.exception("%s failed", timer.name)
        finally:
            running.discard(task)

    return run


async def _stop(running: set[asyncio.Task]) -> None:
    """Cancel the jobs still running and wait for them: each rolls back while the database
    is still open. Left to the event loop's end, a job cancelled inside a SQLite
    transaction waited on a connection closed under it, for minutes."""
    tasks = list(running)
    for task in tasks:
        task.cancel()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        if pending:
            log.warning("%d timed jobs did not stop within %.0f s", len(pending), STOP_SECONDS)


def install(app: web.Application) -> None:
    """Start every timer added so far with the app, stop them with it."""

    async def timers(app: web.Application):
        scheduler = AsyncIOScheduler(timezone="UTC")
        running: set[asyncio.Task] = set()
        for timer in app.get(TIMERS, []):
            scheduler.add_job(
                _guarded(timer, running),
                "interval",
                seconds=timer.seconds,
                max_instances=1,
                coalesce=True,
                next_run_time=utcnow(),
                name=timer.name,
            )
        scheduler.start()
        yield
        scheduler.shutdown(wait=False)
        await _stop(running)

    app.cleanup_ctx.append(timers)
