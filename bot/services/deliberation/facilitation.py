"""What facilitators do at the tables: post, pause, resume, end, hide; who has spoken."""

from __future__ import annotations

from datetime import datetime

from bot.relay import Relay
from bot.services.deliberation.types import Changed, Hidden, Line, PromptState, Speaking


async def post(
    relay: Relay,
    text: str,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    raise NotImplementedError


async def pause(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    raise NotImplementedError


async def resume(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    raise NotImplementedError


async def end(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    raise NotImplementedError


async def hide(
    relay: Relay, contribution_id: int, *, by: str = "facilitator", now: datetime | None = None
) -> Hidden:
    raise NotImplementedError


async def speaking_counts(relay: Relay, round_no: int) -> dict[int, dict[str, Speaking]]:
    raise NotImplementedError


async def open_prompts(relay: Relay, round_no: int | None = None) -> list[PromptState]:
    raise NotImplementedError


async def table_view(relay: Relay, round_no: int, table: int, *, last: int = 20) -> list[Line]:
    raise NotImplementedError
