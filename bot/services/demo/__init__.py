"""The demo: with no assembly configured and a database with no assembly in it, `serve`
runs the bundled example assembly (example.py) in the simulator, with simulated people
(people.py), and the simulator page guides a visitor through the journey (tour.py, web.py):
invitation, consent, registration, the draw, a briefing, a table and a ballot. Between the
visitor's steps the organisers' steps (steps.py) run through the services the `concorder`
commands call.

The demo never sends through Telegram or Twilio: it runs only when the simulator is on and
no real channel is configured. Its database is marked (`demo.seeded` in the audit trail),
so a second `serve` on it carries on where the visitor was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.relay import Relay
from bot.services.demo import example, people, steps, tour
from bot.services.demo.web import DEMO, DemoState, add_routes
from flows.assembly import Assembly
from scheduler.config import Calendar
from store.models import AuditEvent

log = logging.getLogger(__name__)

__all__ = ["example", "install", "is_on", "people", "steps", "tour", "wanted"]


async def wanted(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """The database holds no assembly (none recorded its name), or is the demo's own."""
    async with sessions() as session:
        if await people.seeded(session):
            return True
        assembly = await session.scalar(
            select(AuditEvent.id).where(AuditEvent.kind == "recruitment.assembly").limit(1)
        )
        return assembly is None


def install(
    app: web.Application,
    relay: Relay,
    dispatch: bool,
    use_assembly: Callable[[Relay, Assembly, Calendar], None],
) -> None:
    """At start-up, once the database is open: the demo if it is wanted, else nothing.
    `use_assembly` is the composition root's way to switch the relay to the example."""
    settings = relay.settings
    if (
        relay.assembly is not None
        or settings.assembly_file
        or not settings.simulator_enabled
        or settings.real_channel_configured
    ):
        return
    state = DemoState()
    app[DEMO] = state
    add_routes(app)

    async def start(app: web.Application) -> None:
        if not await wanted(relay.sessions):
            return
        use_assembly(relay, *example.load())
        await people.seed(relay)
        state.on = True
        log.info("demo: the bundled example assembly, in the simulator")

    app.on_startup.append(start)  # after the database (cleanup contexts start first)


def is_on(app: web.Application) -> bool:
    return DEMO in app and app[DEMO].on
