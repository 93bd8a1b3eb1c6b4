"""Who gets briefings and reminders: the confirmed panel, from the recruitment tables.

The audience is a replaceable function so another source (a test, a later feature such
as sub-groups) can be pointed at it without touching the planner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.recruitment import CONFIRMED, Selection

Audience = Callable[[AsyncSession], Awaitable[set[str]]]


async def confirmed_panel(session: AsyncSession) -> set[str]:
    """Participants who were drawn and confirmed they will take part."""
    rows = await session.execute(
        select(Selection.participant_id).where(Selection.status == CONFIRMED))
    return set(rows.scalars())


_audience: Audience = confirmed_panel


def set_audience(audience: Audience | None) -> None:
    """Point the calendar at another audience (None: back to the confirmed panel)."""
    global _audience
    _audience = audience or confirmed_panel


async def panel(session: AsyncSession) -> set[str]:
    return await _audience(session)


async def on_panel(session: AsyncSession, participant_id: str) -> bool:
    if _audience is confirmed_panel:  # one row, not the whole panel, on every message
        found = await session.execute(
            select(Selection.id).where(Selection.participant_id == participant_id,
                                       Selection.status == CONFIRMED))
        return found.first() is not None
    return participant_id in await _audience(session)
