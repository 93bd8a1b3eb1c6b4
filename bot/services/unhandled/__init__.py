"""Inbound messages are never lost: one whose turn fails is stored and tried again later,
and its sender's later messages wait behind it (`keep`, `queue`, `retry`, `timing`)."""

from __future__ import annotations

from aiohttp import web

from bot.relay import Relay
from scheduler import timers

RETRY_SECONDS = 10.0  # how often due messages are looked for; the delays are minutes


def install(app: web.Application, relay: Relay) -> None:
    """Try kept messages again on a timer while the service runs."""
    # Imported here: `retry` runs turns, and `turns` imports this package's `queue`.
    from bot.services.unhandled.retry import retry_due

    async def job() -> None:
        await retry_due(relay)

    timers.add(app, "inbound: messages whose turn failed, tried again", RETRY_SECONDS, job)
