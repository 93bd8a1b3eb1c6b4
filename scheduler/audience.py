"""Who gets briefings and reminders: the confirmed panel, from the recruitment tables.

`Audience` is the shape another source (a later feature such as sub-groups) takes.
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
        select(Selection.participant_id).where(Selection.status == CONFIRMED)
    )
    return set(rows.scalars())


async def panel(session: AsyncSession) -> set[str]:
    return await confirmed_panel(session)


async def on_panel(session: AsyncSession, participant_id: str) -> bool:
    """One row, not the whole panel, on every message."""
    found = await session.execute(
        select(Selection.id).where(
            Selection.participant_id == participant_id, Selection.status == CONFIRMED
        )
    )
    return found.first() is not None
