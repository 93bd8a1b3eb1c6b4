"""Opening a prompt at the tables of a round."""

from __future__ import annotations

from datetime import datetime

from bot.relay import Relay
from bot.services.deliberation.types import Opened


async def open_prompt(
    relay: Relay,
    *,
    round_no: int,
    prompt: str | None = None,
    text: str | dict[str, str] | None = None,
    table: int | None = None,
    minutes: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Opened:
    raise NotImplementedError
