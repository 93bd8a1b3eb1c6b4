"""Inbound messages are never lost: one whose turn fails is stored and tried again later,
and its sender's later messages wait behind it (`keep`, `queue`, `retry`, `timing`)."""

from __future__ import annotations

from aiohttp import web

from bot.metrics import INBOUND_WAITING
from bot.relay import Relay
from scheduler import timers

RETRY_SECONDS = 10.0  # how often due messages are looked for; the delays are minutes


async def tick(relay: Relay) -> None:
    """One run of the timer: what is due tried again, then the gauge of what still waits."""
    # Imported here: `retry` runs turns, and `turns` imports this package's `queue`.
    from bot.services.unhandled import records
    from bot.services.unhandled.retry import retry_due

    await retry_due(relay)
    async with relay.sessions() as session:
        waiting, given_up = await records.counts(session)
    INBOUND_WAITING.labels("waiting").set(waiting)
    INBOUND_WAITING.labels("given_up").set(given_up)


def install(app: web.Application, relay: Relay) -> None:
    """Try kept messages again on a timer while the service runs."""

    async def job() -> None:
        await tick(relay)

    timers.add(app, "inbound: messages whose turn failed, tried again", RETRY_SECONDS, job)
