"""The conversation's timed work."""

from __future__ import annotations

from datetime import datetime

from bot.relay import Relay


async def run_due(relay: Relay, *, now: datetime | None = None) -> int:
    raise NotImplementedError
