"""The background task: scheduled broadcasts go out when due."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.relay import Relay
from bot.services.attendance import forward_attendance
from bot.services.broadcast.queueing import release_due
from bot.services.broadcast.timing import timing_of
from bot.settings import Settings
from scheduler import timers
from scheduler.config import Calendar
from store.models import utcnow

log = logging.getLogger(__name__)

RELEASE_EVERY = 15.0  # seconds


async def release_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, calendar: Calendar | None = None
) -> int:
    """Scheduled broadcasts that are due, and attendance notices no organiser was told of
    yet (there was none when they came in). Returns how many of both went out."""
    released = await release_due(sessions, settings, timing=timing_of(calendar))
    if released:
        log.info("released %d scheduled broadcast(s)", len(released))
    async with sessions.begin() as session:
        forwarded = await forward_attendance(session, settings, utcnow(), calendar=calendar)
    return len(released) + forwarded


def install(app, relay: Relay, dispatch: bool) -> None:
    """Release scheduled broadcasts with the service (not when tests drive the outbox)."""
    if not dispatch:
        return

    async def tick() -> None:
        if await release_once(relay.sessions, relay.settings, relay.calendar):
            relay.outbox_signal.set()

    timers.add(app, "broadcasts: release the scheduled ones", RELEASE_EVERY, tick)
