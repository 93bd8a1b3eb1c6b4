"""The audit sequencer: links committed audit events into the hash chain in batches.

Transactions insert their audit events unlinked (store/audit.py), so they never queue on the
chain's head row; this task links them a moment later. With several instances on one
database each runs one, and only one links at a time (the head row is taken with SKIP
LOCKED on PostgreSQL: the others move on).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.relay import Relay
from store import audit

log = logging.getLogger(__name__)

INTERVAL = 0.2  # seconds between passes when nothing is waiting
BATCH = 2000


async def run(
    sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event, interval: float = INTERVAL
) -> None:
    """Link events until `stop` is set; a failed pass is logged and tried again."""
    while not stop.is_set():
        linked = 0
        try:
            async with sessions.begin() as session:
                linked = await audit.sequence(session, limit=BATCH, wait=False)
        except Exception as exc:
            log.error("audit sequencing failed: %s", type(exc).__name__)
        if linked < BATCH:
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass
    # Whatever this instance wrote last is linked before it goes.
    try:
        await audit.sequence_all(sessions)
    except Exception as exc:
        log.error("audit sequencing at shutdown failed: %s", type(exc).__name__)


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Link audit events beside the web server, whatever else runs (tests that leave the
    outbox alone still see their events linked)."""

    async def sequencer_context(app: web.Application):
        stop = asyncio.Event()
        task = asyncio.create_task(run(relay.sessions, stop), name="audit-sequencer")
        yield
        stop.set()
        await task

    app.cleanup_ctx.append(sequencer_context)
